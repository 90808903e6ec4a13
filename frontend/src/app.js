// The noticeboard page: posts notes through the JSON API and keeps the list current
// with an EventSource on /events. The server renders the first page; this script only
// adds to it, so the list is readable before (and without) the script. Signing in and
// out go through /api/session and reload the page, which the server then renders for
// the signed-in account (or with the sign-in form and no notes).

const API_HEADERS = { "X-Requested-With": "noticeboard" };

const list = document.getElementById("notes");
const empty = document.getElementById("empty");
const form = document.getElementById("note-form");
const message = document.getElementById("form-message");
const liveState = document.getElementById("live-state");
const maxBytes = Number(document.body.dataset.maxUploadMb) * 1024 * 1024;
const canRead = document.body.dataset.canRead === "true";
const canDelete = document.body.dataset.canDelete === "true";

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function renderNote(note) {
  const created = new Date(note.created_at);
  const parts = [
    // dir="auto": each text takes its direction from its own first strong character.
    el("h3", { textContent: note.title, dir: "auto" }),
    el("p", { className: "body", textContent: note.body, dir: "auto" }),
  ];
  if (note.attachment) {
    const { url, name } = note.attachment;
    const link = el("a", { href: url, textContent: name, dir: "auto" });
    link.setAttribute("download", "");
    parts.push(
      el("p", { className: "attachment" }, [
        link,
        " ",
        el("span", { className: "hint", textContent: `(${note.attachment.size} bytes)` }),
      ]),
    );
  }
  const time = el("time", { dateTime: note.created_at, textContent: created.toLocaleString() });
  const footer = el("footer", {}, [time]);
  if (canDelete) {
    const remove = el("button", { type: "button", className: "delete", textContent: "Delete" });
    remove.dataset.id = note.id;
    remove.setAttribute("aria-label", `Delete note: ${note.title}`);
    footer.append(remove);
  }
  parts.push(footer);
  const item = el("li", { className: "note card", id: `note-${note.id}` }, parts);
  item.dataset.id = note.id;
  return item;
}

function updateEmpty() {
  empty.hidden = list.children.length > 0;
}

function insertNote(note, { fresh = false } = {}) {
  if (document.getElementById(`note-${note.id}`)) return;
  const item = renderNote(note);
  if (fresh) item.classList.add("fresh");
  // Newest first: place before the first note with a smaller id.
  const after = [...list.children].find((child) => Number(child.dataset.id) < note.id);
  list.insertBefore(item, after || null);
  updateEmpty();
}

function removeNote(id) {
  document.getElementById(`note-${id}`)?.remove();
  updateEmpty();
}

async function errorText(response) {
  try {
    const data = await response.json();
    return data.error || response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  const data = new FormData(form);
  const file = data.get("attachment");
  if (file && file.size > maxBytes) {
    message.textContent = `The attachment is larger than ${document.body.dataset.maxUploadMb} MiB.`;
    return;
  }
  if (file && !file.name) data.delete("attachment");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch("/api/notes", { method: "POST", body: data, headers: API_HEADERS });
    if (!response.ok) {
      message.textContent = await errorText(response);
      return;
    }
    insertNote(await response.json(), { fresh: true });
    form.reset();
  } catch {
    message.textContent = "The server could not be reached; please try again.";
  } finally {
    button.disabled = false;
  }
});

list?.addEventListener("click", async (event) => {
  const button = event.target.closest("button.delete");
  if (!button) return;
  button.disabled = true;
  const response = await fetch(`/api/notes/${button.dataset.id}`, {
    method: "DELETE",
    headers: API_HEADERS,
  }).catch(() => null);
  if (response && (response.ok || response.status === 404)) {
    removeNote(button.dataset.id);
  } else {
    button.disabled = false;
  }
});

const older = document.getElementById("older");
older?.addEventListener("click", async () => {
  older.disabled = true;
  const response = await fetch(`/api/notes?before=${older.dataset.before}`);
  if (!response.ok) {
    older.disabled = false;
    return;
  }
  const page = await response.json();
  for (const note of page.notes) insertNote(note);
  const next = page.next && new URL(page.next, location.href).searchParams.get("before");
  if (next) {
    older.dataset.before = next;
    older.disabled = false;
  } else {
    older.remove();
  }
});

function connect() {
  // The id the page was rendered at, so nothing posted in between is missed; after a
  // reconnect the browser sends Last-Event-ID itself, which the server prefers.
  const since = document.body.dataset.lastEventId;
  const source = new EventSource(`/events?last_event_id=${encodeURIComponent(since)}`);
  source.addEventListener("open", () => {
    liveState.textContent = "Live: new notes appear by themselves.";
    document.body.dataset.live = "true";
  });
  source.addEventListener("error", () => {
    liveState.textContent = "Reconnecting for live updates…";
    document.body.dataset.live = "false";
  });
  source.addEventListener("note-created", (event) => {
    insertNote(JSON.parse(event.data), { fresh: true });
  });
  source.addEventListener("note-deleted", (event) => {
    removeNote(JSON.parse(event.data).id);
  });
}

const signIn = document.getElementById("sign-in-form");
signIn?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const signInMessage = document.getElementById("sign-in-message");
  signInMessage.textContent = "";
  const button = signIn.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch("/api/session", {
      method: "POST",
      headers: { ...API_HEADERS, "Content-Type": "application/json" },
      body: JSON.stringify({
        username: signIn.elements.username.value,
        password: signIn.elements.password.value,
      }),
    });
    if (response.ok) {
      location.reload();
      return;
    }
    signInMessage.textContent = await errorText(response);
  } catch {
    signInMessage.textContent = "The server could not be reached; please try again.";
  } finally {
    button.disabled = false;
  }
});

document.getElementById("sign-out")?.addEventListener("click", async () => {
  await fetch("/api/session", { method: "DELETE", headers: API_HEADERS }).catch(() => null);
  location.reload();
});

if (canRead) {
  updateEmpty();
  connect();
}
