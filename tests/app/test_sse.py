"""Server-Sent Events through real Gunicorn processes with eventlet and gevent workers."""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time

import httpx
import pytest
from conftest import BACKENDS, ensure_backend, new_database

from noticeboard import events, migrate

from helpers import CSRF, WAIT, Server, SseClient, post_note

COMBOS = [(worker, backend) for worker in ("eventlet", "gevent") for backend in BACKENDS]


@pytest.fixture(scope="module", params=COMBOS, ids=lambda c: f"{c[0]}-{c[1]}")
def server(request, tmp_path_factory):
    worker, backend = request.param
    ensure_backend(backend)
    tmp = tmp_path_factory.mktemp(f"{worker}-{backend}")
    with new_database(backend, tmp) as url:
        migrate.upgrade(url)
        srv = Server(url, tmp / "a", worker_class=worker, workers=2)
        # A second node on the same database, for the cross-instance test.
        srv.other = Server(url, tmp / "b", worker_class=worker, workers=1)
        srv.launch()
        srv.other.launch()
        try:
            srv.wait_ready()
            srv.other.wait_ready()
            yield srv
        finally:
            srv.terminate()
            srv.other.terminate()


def test_many_concurrent_clients_all_receive_each_event(server):
    clients = [SseClient(server.url + "/events") for _ in range(40)]
    for client in clients:
        client.launch()
    for client in clients:
        client.wait_connected()
    note = post_note(server.url, "to everyone")
    httpx.delete(f"{server.url}/api/notes/{note['id']}", headers=CSRF, timeout=WAIT)
    for client in clients:
        created, deleted = client.take(2)
        assert (created.event, deleted.event) == ("note-created", "note-deleted")
        assert created.id < deleted.id
        assert httpx.Response(200, content=created.data).json() == note
    assert all(not client.quiet(0.1) for client in clients[1:])
    assert not clients[0].quiet()
    for client in clients:
        client.stop = True


def test_last_event_id_resumes_without_gaps_or_duplicates(server):
    live = SseClient(server.url + "/events").start()
    notes = [post_note(server.url, f"resume {i}") for i in range(3)]
    seen = live.take(3)
    assert [e.data for e in seen] == [httpx.Response(200, json=n).text for n in notes]
    ids = [e.id for e in seen]
    assert ids == sorted(ids)

    resumed = SseClient(server.url + "/events", last_event_id=ids[0]).start()
    assert [e.id for e in resumed.take(2)] == ids[1:]
    fresh = post_note(server.url, "after resume")
    (event,) = resumed.take(1)
    assert f'"id":{fresh["id"]}' in event.data
    assert event.id > ids[-1]
    assert not resumed.quiet()


def test_resume_while_events_are_being_written(server):
    start = SseClient(server.url + "/events").start()
    first = post_note(server.url, "marker")
    (marker,) = start.take(1)
    assert f'"id":{first["id"]}' in marker.data

    posted: list[int] = []

    def writer():
        posted.extend(post_note(server.url, f"burst {i}")["id"] for i in range(25))

    thread = threading.Thread(target=writer)
    thread.start()
    # Connect in the middle of the burst, resuming right after the marker event.
    late = SseClient(server.url + "/events", last_event_id=marker.id).start()
    thread.join(WAIT)
    events = late.take(25)
    note_ids = [int(e.data.split('"id":')[1].split(",")[0]) for e in events]
    assert note_ids == posted
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert not late.quiet()


def test_idle_streams_get_heartbeat_comments(server):
    client = SseClient(server.url + "/events").start()
    deadline = time.monotonic() + WAIT
    while client.comments < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.comments >= 2
    assert client.events.empty()
    assert client.error is None


def test_a_malformed_last_event_id_is_refused(server):
    response = httpx.get(server.url + "/events", headers={"Last-Event-ID": "../1"}, timeout=WAIT)
    assert response.status_code == 400
    assert response.json()["field"] == "Last-Event-ID"


def test_an_event_reaches_clients_of_another_instance(server):
    here = SseClient(server.url + "/events").start()
    there = SseClient(server.other.url + "/events").start()
    note = post_note(server.other.url, "from the other node")
    for client in (here, there):
        (event,) = client.take(1)
        assert f'"id":{note["id"]}' in event.data
    note = post_note(server.url, "and back")
    for client in (here, there):
        (event,) = client.take(1)
        assert f'"id":{note["id"]}' in event.data


def _next_message(sub, client, body: str, wait: float = WAIT):
    """Post a note through the app and take the next event its subscriber is given."""
    response = client.post("/api/notes", json={"body": body}, headers=CSRF)
    assert response.status_code == 201, response.get_data(as_text=True)
    try:
        return response.get_json()["id"], sub.queue.get(timeout=wait)
    except queue.Empty:
        return response.get_json()["id"], None


def test_a_write_wakes_the_poller_of_its_own_worker(app, client):
    """With a poll interval far beyond the test's patience, only the wake-up that a
    committed write gives its own worker's poller can bring the event to a subscriber."""
    broker = app.extensions["noticeboard.broker"]
    broker.poll_seconds = 3600
    sub = broker.subscribe()
    try:
        # The poller reads the newest id when it starts; a note written before that read
        # is not news to it. The second note is written while the poller surely waits.
        first_id, first = _next_message(sub, client, "first", wait=5)
        second_id, second = _next_message(sub, client, "second")
        delivered = [json.loads(m.data)["id"] for m in (first, second) if m is not None]
        assert second_id in delivered, (first_id, second_id, delivered)
        assert second.kind == "note-created"
    finally:
        broker.unsubscribe(sub)
        broker.nudge()  # the poller finds no subscriber and ends


def test_events_queued_while_a_stream_was_busy_go_out_in_one_write(app):
    """A stream that fell behind sends everything queued at once, in id order, without
    what it already sent, and ends after it when the stream is closed."""
    broker = app.extensions["noticeboard.broker"]
    broker.poll_seconds = 3600
    sub = broker.subscribe()
    stream = events._stream(broker, sub, 2, [], heartbeat=60)
    assert next(stream).startswith("retry:")
    for number in (1, 2, 3, 4, 5):
        sub.queue.put_nowait(events.Message(number, "note-created", f'{{"id":{number}}}'))
    sub.close()
    chunks = list(stream)
    assert chunks == [
        "".join(events.Message(n, "note-created", f'{{"id":{n}}}').text for n in (3, 4, 5))
    ]
    assert sub not in broker._subscribers
    broker.nudge()  # the poller finds no subscriber and ends


def test_subscribers_that_fall_behind_are_dropped_together_with_one_warning(app, caplog):
    broker = app.extensions["noticeboard.broker"]
    behind = [broker.subscribe() for _ in range(3)]
    keeping_up = broker.subscribe()
    for sub in behind:
        for number in range(events.QUEUE_SIZE):
            sub.queue.put_nowait(events.Message(number, "note-created", "{}"))
    with caplog.at_level("WARNING", logger="noticeboard.events"):
        broker._fan_out([events.Message(events.QUEUE_SIZE, "note-created", "{}")])
    assert all(sub.closed for sub in behind) and not keeping_up.closed
    assert broker._subscribers.isdisjoint(behind) and keeping_up in broker._subscribers
    assert keeping_up.queue.qsize() == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"dropping 3 subscriber(s) that fell {events.QUEUE_SIZE} events behind"
    ]
    for sub in (*behind, keeping_up):
        broker.unsubscribe(sub)
    broker.nudge()


def _burst(app, client) -> list[float]:
    """Writes for 4 x FAN_OUT_GAP with one stream open: every event must arrive, once and
    in order, in at least two fan-outs that together carry all of them. The gaps between
    the fan-outs."""
    broker = app.extensions["noticeboard.broker"]
    broker.poll_seconds = 3600
    fan_outs: list[tuple[float, int]] = []
    real_fan_out = broker._fan_out

    def counting(messages):
        fan_outs.append((time.monotonic(), len(messages)))
        real_fan_out(messages)

    broker._fan_out = counting
    sub = broker.subscribe()
    try:
        _next_message(sub, client, "before the burst", wait=5)
        fan_outs.clear()
        written = []
        until = time.monotonic() + 4 * events.FAN_OUT_GAP
        while time.monotonic() < until:
            response = client.post("/api/notes", json={"body": "burst"}, headers=CSRF)
            assert response.status_code == 201
            written.append(response.get_json()["id"])
        received = []
        while len(received) < len(written):
            message = sub.queue.get(timeout=WAIT)
            received.append(json.loads(message.data)["id"])
        assert received == written
        assert len(fan_outs) >= 2 and sum(n for _, n in fan_outs) == len(written)
        return [b - a for (a, _), (b, _) in itertools.pairwise(fan_outs)]
    finally:
        broker._fan_out = real_fan_out
        broker.unsubscribe(sub)
        broker.nudge()


def test_a_burst_of_writes_is_fanned_out_in_batches_not_one_by_one(app, client):
    """While writes keep coming, the poller fans out at most once per FAN_OUT_GAP, each
    time everything committed since; every event still arrives, once and in order."""
    gaps = _burst(app, client)
    assert min(gaps) >= events.FAN_OUT_GAP * 0.9, gaps


def test_a_slow_read_does_not_bring_the_next_fan_out_closer(app, client, monkeypatch):
    """The gap is kept from one fan-out to the next, whatever the read before a fan-out
    takes: a busy database makes some reads slow and others not (here every other read
    takes 60 % of the gap), which must not wake the streams more often."""
    db = app.extensions["noticeboard.broker"].db
    real_events_after = db.events_after
    reads = itertools.count()

    def uneven(*args, **kwargs):
        if next(reads) % 2 == 0:
            time.sleep(events.FAN_OUT_GAP * 0.6)
        return real_events_after(*args, **kwargs)

    monkeypatch.setattr(db, "events_after", uneven)
    gaps = _burst(app, client)
    assert min(gaps) >= events.FAN_OUT_GAP * 0.9, gaps
