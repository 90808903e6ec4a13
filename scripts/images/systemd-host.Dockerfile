# A test host that boots like the servers users own: systemd as PID 1 on a Debian
# release, with what Ansible needs to manage it. The container gets a private tmpfs at
# /sys/fs/cgroup with the machine's hierarchies bound inside it (see molecule/config.yml):
# a systemd given the machine's own cgroup tmpfs remounts it for everyone.
ARG BASE=local/molecule-host:trixie
FROM ${BASE}
# Test-bed images follow the Debian release's current packages on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd systemd-sysv dbus \
 && rm -rf /var/lib/apt/lists/* \
 && find /etc/systemd/system/*.wants/ -name 'getty*' -delete \
 && systemctl mask systemd-modules-load.service systemd-udevd.service \
      systemd-udev-trigger.service getty.target console-getty.service \
      systemd-firstboot.service systemd-remount-fs.service
# The users the shipped inventories connect as (a Pi's `pi`, a server's `deploy`), with
# password-less sudo as Raspberry Pi OS gives its first user: playbooks `become` root.
RUN useradd --create-home --shell /bin/bash pi \
 && useradd --create-home --shell /bin/bash deploy \
 && printf '%s ALL=(ALL) NOPASSWD: ALL\n' pi deploy > /etc/sudoers.d/010-testbed-users \
 && chmod 0440 /etc/sudoers.d/010-testbed-users
# apt asks the test-bed's cache when the host can see it (scripts/images/apt-proxy).
COPY apt-proxy /usr/local/bin/testbed-apt-proxy
RUN printf 'Acquire::http::Proxy-Auto-Detect "/usr/local/bin/testbed-apt-proxy";\n' \
      > /etc/apt/apt.conf.d/01testbed-proxy
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
