#!/usr/bin/env python
"""Lab fleet for linuxnet.netns: "hosts" made of Linux namespaces, each running a real sshd.

Everything here runs inside the throwaway sandbox made by ``tests/sandbox.sh`` (which sets
``LINUXNET_SANDBOX=1``); ``lab.py`` refuses to touch networking anywhere else.

Topology (addresses are fixed; one lab per sandbox)::

        controller = the sandbox's own network namespace (Ansible runs from here)
        lab-br0 192.0.2.254/24
          |-- lab-h1 ==== eth0 192.0.2.11/24   host lab1  (own net+mount+uts ns, sshd on :22)
          |-- lab-h2 ==== eth0 192.0.2.12/24   host lab2
          |   ...                              host labN  (192.0.2.(10+N), N <= 189)
          |-- lab-bys === eth0 192.0.2.200/24  bystander (only with --bystander; no sshd)
          `-- lab-rtr === eth0 192.0.2.1/24    router, forwarding on, no NAT
                          eth1 198.51.100.1/24 ======= eth0 198.51.100.2/24  internet
                                                       echo server on TCP+UDP port 8080

Every node (host, router, internet, bystander) is one process started with
``unshare --net --mount --uts --propagation private``.  Its init mounts private tmpfs on /run
(so /run/sshd and /run/netns are its own), on /run/netns, on /etc/sysctl.d and on the directories the
collection writes in /etc and /usr/local/lib, sets its hostname
(and names it in its own /etc/hosts, 127.0.1.1), waits for the parent to plug in its veth,
applies its addresses and routes with one ``ip -batch``, sets net.ipv4.ip_forward (0 on hosts,
the collection turns it on; 1 on the router), then execs its payload: ``sshd -D -e`` on hosts,
the echo server on ``internet``, ``sleep infinity`` elsewhere.
Nodes are reached by PID (``nsenter``), never by a name in /run/netns, so the sandbox's own
/run/netns stays empty.

Hosts have default route via the router (192.0.2.1); the router has no NAT, and ``internet`` routes
192.0.2.0/24 back via 198.51.100.1, so the echo server sees each host's real underlay address (or,
once a host masquerades for namespaces behind it, that host's address rather than theirs).  The
controller itself has no route to 198.51.100.0/24.  ``--prefix`` renames hosts and interfaces only;
the inventory group is always ``lab``.

Echo server: on 198.51.100.2 port 8080, TCP and UDP.  To every TCP connection, and to every UDP
datagram, it answers one line ``<peer-address> <peer-port>\\n`` and (TCP) closes.  ``lab.py probe``
asks it from inside any node.

State directory (``--dir``):
    lab.json        what ``up`` made: PIDs, namespace ids, addresses, interface names (read by down/exec)
    lab.lock        flock held by the lab's router for as long as the lab lives (in any sandbox)
    inventory.yml   Ansible inventory: group ``lab`` with hosts lab1..labN
    keys/           id_ed25519 (client key Ansible uses), ssh_host_ed25519_key, authorized_keys
    ssh/            one sshd_config per host
    cp/             Ansible's SSH ControlPath directory for this lab (never shared between labs)
    logs/           one log per node (sshd -e output, echo server, init errors)

Commands (run ``lab.py COMMAND --help`` for details)::

    tests/sandbox.sh python3 tests/lab/lab.py run --hosts 3 -- \\
        sh -c 'ansible -i "$LAB_INVENTORY" all -m ansible.builtin.ping'
    # or step by step, in one sandbox:
    lab.py up --hosts 3 --dir /tmp/lab [--bystander] [--prefix lab]
    lab.py exec --dir /tmp/lab lab1 -- ip -br addr
    lab.py exec --dir /tmp/lab internet -- ss -ltnu
    lab.py probe --dir /tmp/lab lab1 [--udp]        # prints the address the echo server saw
    lab.py status --dir /tmp/lab
    lab.py down --dir /tmp/lab [--purge]

Only the standard library is used, so any Python 3.9+ runs it.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

UNDERLAY = ipaddress.ip_network("192.0.2.0/24")
CONTROLLER_ADDRESS = "192.0.2.254"
ROUTER_ADDRESS = "192.0.2.1"
ROUTER_INTERNET_ADDRESS = "198.51.100.1"
INTERNET_NETWORK = ipaddress.ip_network("198.51.100.0/24")
INTERNET_ADDRESS = "198.51.100.2"
BYSTANDER_ADDRESS = "192.0.2.200"
ECHO_PORT = 8080
HOST_OFFSET = 10
MAX_HOSTS = 189  # 192.0.2.11 .. 192.0.2.199; .200 is the bystander, .254 the controller
GROUP = "lab"
STATE_VERSION = 1
# Kernel constants (include/linux/proc_ns.h): the initial namespaces have fixed inode numbers.
INIT_NET_NS_INODE = 0xEFFFFFF9
INIT_PID_NS_INODE = 0xEFFFFFFC
SPECIAL_NODES = ("router", "internet", "bystander")
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Init of every node: the node's first process, already inside its fresh net+mount+uts namespaces.
# $1 hostname, $2 net.ipv4.ip_forward, $3 shadow copy to bind (or ""), then the payload argv.
# Protocol with the parent: print "ready" once the namespaces exist; read an `ip -batch` script
# from stdin until EOF (the parent has plugged the veth in by then); print "configured"; exec.
NODE_INIT = r"""
set -eu
name=$1 forwarding=$2 shadow=$3
shift 3
mount -t tmpfs -o mode=0755,size=64m linuxnet-lab-run /run
mkdir -p /run/netns /run/sshd /run/lock
# the directories the collection writes (saved plans, units and drop-ins, resolvers, boot code), each
# a tmpfs of the node's own, so lab hosts never see each other's files. Not an overlay of /etc: the
# sandbox's /etc is one already (two, under a test worker's sandbox), and the kernel stacks no deeper.
# The mount points are made in the sandbox's /etc, itself private to the sandbox.
for dir in /etc/linuxnet-netns /etc/netns /etc/systemd/system /usr/local/lib/linuxnet-netns; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 linuxnet-lab-files "$dir"
done
mount -t tmpfs -o mode=0755 linuxnet-lab-netns /run/netns
mount -t tmpfs -o mode=0755 linuxnet-lab-sysctl /etc/sysctl.d
if [ -n "$shadow" ]; then mount --bind "$shadow" /etc/shadow; fi
# the node's own name resolves from /etc/hosts, as on an installed Debian (127.0.1.1): looked up in
# DNS instead (Ansible's facts ask for the FQDN), the query would go through the router to a server
# the sandbox cannot reach and wait out the resolver's 5 s timeout
{ cat /etc/hosts; echo "127.0.1.1 $name"; } > /run/hosts
mount --bind /run/hosts /etc/hosts
hostname "$name"
echo ready
ip -batch -
echo "$forwarding" > /proc/sys/net/ipv4/ip_forward
echo configured
exec "$@" </dev/null 1>&2
"""

SSHD_CONFIG = """\
# sshd for lab host {name}; generated by tests/lab/lab.py. Root login with the lab's key only.
ListenAddress {address}:22
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 200
MaxSessions 100
Subsystem sftp internal-sftp
"""


class LabError(Exception):
    """A failure with a message meant for the user (printed without a traceback)."""


# --------------------------------------------------------------------------------------------
# Safety: never run outside the sandbox.


def ns_inode(pid: int | str, kind: str) -> int | None:
    """Inode number of namespace *kind* (net, mnt, uts, pid) of process *pid*, None if gone."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    match = re.fullmatch(r"\w+:\[(\d+)\]", link)
    return int(match.group(1)) if match else None


def require_sandbox() -> None:
    """Refuse to run unless inside tests/sandbox.sh (env flag plus non-initial net and pid ns)."""
    if os.environ.get("LINUXNET_SANDBOX") != "1":
        raise LabError(
            "lab.py changes networking, so it only runs inside the sandbox: LINUXNET_SANDBOX is "
            f"{os.environ.get('LINUXNET_SANDBOX')!r}, not '1'. Run it as "
            "`tests/sandbox.sh python3 tests/lab/lab.py ...`."
        )
    if ns_inode("self", "net") == INIT_NET_NS_INODE or ns_inode("self", "pid") == INIT_PID_NS_INODE:
        raise LabError(
            "LINUXNET_SANDBOX=1 is set but this process is in the machine's initial network or pid "
            "namespace; refusing. Run it through `tests/sandbox.sh`."
        )


def sandbox_identity() -> dict[str, int | None]:
    """The namespaces a lab's PIDs and interfaces are meaningful in."""
    return {"net": ns_inode("self", "net"), "pid": ns_inode("self", "pid")}


# --------------------------------------------------------------------------------------------
# Small helpers.


def run(argv: list[str], *, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run *argv*, capturing output; raise LabError naming the command when it fails."""
    proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"`{shlex.join(argv)}` failed with exit code {proc.returncode}: {detail}")
    return proc


def ip_batch(lines: list[str], *, force: bool = False) -> subprocess.CompletedProcess:
    """Apply iproute2 commands in the current (sandbox) netns with one `ip -batch` process."""
    argv = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    return run(argv, input_text="\n".join(lines) + "\n", check=not force)


def proc_starttime(pid: int) -> int | None:
    """Start time of *pid* in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is dead: it holds no namespace any more
        return None
    return int(fields[19])


def alive(node: dict) -> bool:
    """True when the node's recorded PID is still the very process lab.py started."""
    return proc_starttime(node["pid"]) == node["starttime"]


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def yaml_scalar(value) -> str:
    """A YAML scalar for *value*; strings are JSON-quoted (a JSON string is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def validate_state_dir(raw: str) -> Path:
    path = Path(raw).expanduser().resolve()
    for hidden in ("/run", "/proc", "/sys", "/dev"):
        if path == Path(hidden) or Path(hidden) in path.parents:
            raise LabError(
                f"--dir {raw!r} resolves to {path}, under {hidden}, which lab nodes do not share with "
                "the controller (each node mounts its own tmpfs on /run); pick a directory elsewhere, "
                "e.g. under /tmp."
            )
    return path


# --------------------------------------------------------------------------------------------
# State file.


def load_state(state_dir: Path) -> dict:
    path = state_dir / "lab.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab in {state_dir}: {path} does not exist (run `lab.py up` first)") from None
    if state.get("version") != STATE_VERSION:
        raise LabError(f"{path} has version {state.get('version')!r}; this lab.py reads {STATE_VERSION}")
    return state


def same_sandbox(state: dict) -> bool:
    """PIDs and interface names in *state* mean something only in the sandbox that made them."""
    return state.get("sandbox") == sandbox_identity()


def all_nodes(state: dict) -> dict[str, dict]:
    """Every node of the lab by name: hosts first, then router, internet, bystander."""
    nodes = dict(state["hosts"])
    for name in SPECIAL_NODES:
        if state.get(name):
            nodes[name] = state[name]
    return nodes


# --------------------------------------------------------------------------------------------
# up


class Node:
    """One namespace 'machine' being started: its process and its network configuration."""

    def __init__(self, name: str, kind: str, forwarding: int, payload: list[str], log: Path):
        self.name = name
        self.kind = kind  # host, router, internet, bystander
        self.forwarding = forwarding
        self.payload = payload
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.batch: list[str] = []  # ip commands run inside the node
        self.record: dict = {}

    def spawn(self, shadow: str, pass_fds: tuple[int, ...] = ()) -> None:
        argv = [
            "unshare", "--net", "--mount", "--uts", "--propagation", "private",
            "/bin/sh", "-c", NODE_INIT, f"lab-init-{self.name}",
            self.name, str(self.forwarding), shadow, *self.payload,
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a Ctrl-C for lab.py must not hit the lab's sshd
                pass_fds=pass_fds,
                env={"PATH": NODE_PATH, "LANG": "C.UTF-8", "HOME": "/root"},
                cwd="/",
            )

    def expect(self, word: str) -> None:
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if line != word:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            raise LabError(
                f"node {self.name} said {line!r} instead of {word!r} (init exit status {self.proc.returncode}); "
                f"its log {self.log} says: {tail(self.log)}"
            )

    def configure(self) -> None:
        self.proc.stdin.write(("\n".join(self.batch) + "\n").encode())
        self.proc.stdin.close()


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty)"


def shadow_for_root_login(state_dir: Path) -> str:
    """With UsePAM no, sshd refuses an account whose password field starts with '!' (locked).

    If root is locked on this machine, give the nodes a copy of /etc/shadow where it is not
    (bind-mounted in the node's own mount namespace only).  Returns "" when nothing is needed.
    """
    try:
        lines = Path("/etc/shadow").read_text().splitlines(keepends=True)
    except OSError:
        return ""
    out, changed = [], False
    for line in lines:
        fields = line.split(":")
        if fields[0] == "root" and len(fields) > 1 and fields[1].startswith("!"):
            fields[1] = "*"
            line, changed = ":".join(fields), True
        out.append(line)
    if not changed:
        return ""
    path = state_dir / "keys" / "shadow"
    write_atomic(path, "".join(out), 0o600)
    return str(path)


def make_keys(keys: Path) -> list[subprocess.Popen]:
    """Start ssh-keygen for the lab's host key and client key (one pair each, per lab)."""
    procs = []
    for name, comment in (("ssh_host_ed25519_key", "linuxnet-lab host"), ("id_ed25519", "linuxnet-lab client")):
        for old in (keys / name, keys / f"{name}.pub"):
            old.unlink(missing_ok=True)
        procs.append(
            subprocess.Popen(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(keys / name)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    return procs


def check_free(prefix: str, links: list[str]) -> None:
    """Refuse to build over an existing lab (ours or another prefix's) in this sandbox."""
    out = run(["ip", "-o", "-4", "addr", "show"]).stdout
    if re.search(rf"\binet {re.escape(CONTROLLER_ADDRESS)}/", out):
        raise LabError(
            f"{CONTROLLER_ADDRESS} is already configured in this sandbox (another lab is up; addresses "
            "are fixed, so one lab per sandbox): run `lab.py down` on it first."
        )
    existing = set(re.findall(r"^\d+: ([^:@]+)", run(["ip", "-o", "link", "show"]).stdout, re.M))
    taken = sorted(existing.intersection(links))
    if taken:
        raise LabError(f"interfaces {', '.join(taken)} already exist in this sandbox; run `lab.py down` first")


def wait_for_banner(address: str, deadline: float, stop: threading.Event) -> bool:
    """Connect to address:22 until sshd sends its "SSH-" banner; False at deadline or stop."""
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=0.5) as sock:
                sock.settimeout(1.0)
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def wait_ready(hosts: list[Node], echo_ready: Path, nodes: list[Node], timeout: float) -> None:
    """Wait until every host's sshd sends its banner and the echo server is listening.

    One thread per host, so a slow host never delays the check of the others.
    """
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    ready: dict[str, bool] = {}

    def check(node: Node) -> None:
        ready[node.name] = wait_for_banner(node.record["address"], deadline, stop)

    threads = [threading.Thread(target=check, args=(node,), daemon=True) for node in hosts]
    for thread in threads:
        thread.start()
    try:
        while True:
            if all(ready.get(node.name) for node in hosts) and echo_ready.exists():
                return
            for node in nodes:
                if node.proc.poll() is not None:
                    raise LabError(f"node {node.name} exited with {node.proc.returncode}: {tail(node.log)}")
            if time.monotonic() > deadline:
                waiting = [node.name for node in hosts if not ready.get(node.name)]
                waiting += [] if echo_ready.exists() else ["internet echo server"]
                raise LabError(f"still not ready after {timeout:g}s: {', '.join(waiting)}")
            time.sleep(0.005)
    finally:
        stop.set()


def plan_nodes(args, state_dir: Path) -> tuple[list[Node], list[str], list[str]]:
    """Describe every node, the ip commands for the sandbox side, and the interfaces we own."""
    prefix, logs = args.prefix, state_dir / "logs"
    bridge = f"{prefix}-br0"
    lab_py = str(Path(__file__).resolve())
    nodes: list[Node] = []
    for i in range(1, args.hosts + 1):
        name = f"{prefix}{i}"
        node = Node(name, "host", 0, ["/usr/sbin/sshd", "-D", "-e", "-f", str(state_dir / "ssh" / f"{name}.sshd_config")], logs / f"{name}.log")
        node.record = {"address": str(UNDERLAY[HOST_OFFSET + i]), "link": f"{prefix}-h{i}"}
        nodes.append(node)
    router = Node("router", "router", 1, ["sleep", "infinity"], logs / "router.log")
    router.record = {"address": ROUTER_ADDRESS, "internet_address": ROUTER_INTERNET_ADDRESS, "link": f"{prefix}-rtr"}
    internet = Node(
        "internet", "internet", 0,
        [sys.executable, lab_py, "_echo", "--address", INTERNET_ADDRESS, "--port", str(ECHO_PORT),
         "--ready-file", str(state_dir / "run" / "echo.ready")],
        logs / "internet.log",
    )
    internet.record = {"address": INTERNET_ADDRESS, "echo_port": ECHO_PORT}
    nodes += [router, internet]
    if args.bystander:
        bystander = Node("bystander", "bystander", 0, ["sleep", "infinity"], logs / "bystander.log")
        bystander.record = {"address": BYSTANDER_ADDRESS, "link": f"{prefix}-bys"}
        nodes.append(bystander)

    for node in nodes:
        node.batch.append("link set lo up")
        if node.kind in ("host", "bystander"):
            node.batch += [
                f"addr add {node.record['address']}/24 dev eth0",
                "link set eth0 up",
                f"route add default via {ROUTER_ADDRESS}",
            ]
    router.batch += [
        f"addr add {ROUTER_ADDRESS}/24 dev eth0", "link set eth0 up",
        f"addr add {ROUTER_INTERNET_ADDRESS}/24 dev eth1", "link set eth1 up",
    ]
    internet.batch += [
        f"addr add {INTERNET_ADDRESS}/24 dev eth0", "link set eth0 up",
        f"route add {UNDERLAY} via {ROUTER_INTERNET_ADDRESS}",
    ]
    links = [bridge] + [n.record["link"] for n in nodes if "link" in n.record]
    # The bridge gets a fixed MAC so the controller's address never changes MAC as ports join.
    sandbox_batch = [
        f"link add {bridge} address 02:00:c0:00:02:fe type bridge",
        f"addr add {CONTROLLER_ADDRESS}/24 dev {bridge}",
        f"link set {bridge} up",
    ]
    return nodes, sandbox_batch, links


def lock_state_dir(state_dir: Path) -> int | None:
    """Take STATE_DIR/lab.lock (flock); None if a live lab, of any sandbox, holds it.

    ``up`` hands the locked descriptor to the router's process, so the lock lives exactly as long
    as the lab: whichever sandbox it is in, however it ends.
    """
    fd = os.open(state_dir / "lab.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def raise_interrupt(signum, frame):
    """Signal handler: turn SIGTERM/SIGHUP into KeyboardInterrupt so cleanup code runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_up(args) -> int:
    require_sandbox()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
    state_dir = validate_state_dir(args.dir)
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", args.prefix):
        raise LabError(f"--prefix {args.prefix!r}: use 1-8 lowercase letters/digits starting with a letter (interface names are limited to 15 characters)")
    if not 1 <= args.hosts <= MAX_HOSTS:
        raise LabError(f"--hosts {args.hosts}: must be between 1 and {MAX_HOSTS} (192.0.2.11 .. 192.0.2.{HOST_OFFSET + MAX_HOSTS})")
    if (state_dir / "lab.json").exists():
        old = load_state(state_dir)
        if same_sandbox(old) and any(alive(n) for n in all_nodes(old).values()):
            raise LabError(f"a lab is already up in {state_dir}; run `lab.py down --dir {state_dir}` first")
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_state_dir(state_dir)
    if lock is None:
        raise LabError(
            f"a lab is running in {state_dir} (in this or another sandbox: {state_dir / 'lab.lock'} is "
            "held by its router); bring it down from its own sandbox, or use another --dir"
        )
    for stale in ("lab.json", "inventory.yml"):  # left over from a sandbox that is gone
        (state_dir / stale).unlink(missing_ok=True)
    for sub in ("keys", "ssh", "logs", "run", "cp"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    (state_dir / "run" / "echo.ready").unlink(missing_ok=True)
    for sock in (state_dir / "cp").iterdir():
        sock.unlink()

    nodes, sandbox_batch, links = plan_nodes(args, state_dir)
    check_free(args.prefix, links)
    keygens = make_keys(state_dir / "keys")
    shadow = shadow_for_root_login(state_dir)
    state = {
        "version": STATE_VERSION,
        "prefix": args.prefix,
        "group": GROUP,
        "sandbox": sandbox_identity(),
        "dir": str(state_dir),
        "inventory": str(state_dir / "inventory.yml"),
        "private_key": str(state_dir / "keys" / "id_ed25519"),
        "controller": {"address": CONTROLLER_ADDRESS, "bridge": f"{args.prefix}-br0"},
        "links": links,
        "hosts": {},
        "router": None,
        "internet": None,
        "bystander": None,
        "complete": False,
    }
    try:
        for node in nodes:
            node.spawn(shadow, (lock,) if node.kind == "router" else ())
        ip_batch(sandbox_batch)
        write_state(state_dir, state, nodes)  # from here on, down can find and remove everything
        for node in nodes:
            node.expect("ready")
            node.record.update(
                pid=node.proc.pid,
                starttime=proc_starttime(node.proc.pid),
                ns={kind: ns_inode(node.proc.pid, kind) for kind in ("net", "mnt", "uts")},
            )
        write_state(state_dir, state, nodes)
        by_kind = {node.kind: node for node in nodes}
        veths = []
        for node in nodes:
            if "link" in node.record:
                veths.append(
                    f"link add {node.record['link']} up master {args.prefix}-br0 type veth "
                    f"peer name eth0 netns {node.proc.pid}"
                )
        veths.append(
            f"link add eth1 netns {by_kind['router'].proc.pid} type veth "
            f"peer name eth0 netns {by_kind['internet'].proc.pid}"
        )
        ip_batch(veths)
        for keygen in keygens:
            if keygen.wait() != 0:
                raise LabError(f"ssh-keygen failed: {keygen.stderr.read().decode().strip()}")
        write_ssh_config(state_dir, [n for n in nodes if n.kind == "host"])
        for node in nodes:
            node.configure()
        for node in nodes:
            node.expect("configured")
        wait_ready([n for n in nodes if n.kind == "host"], state_dir / "run" / "echo.ready", nodes, args.timeout)
        write_inventory(state_dir, [n for n in nodes if n.kind == "host"], args.bystander)
        state["complete"] = True
        write_state(state_dir, state, nodes)
    except BaseException:
        # Leave nothing half-built behind: tear down whatever exists, then report the first error.
        try:
            teardown(state, quiet=True)
        finally:
            for node in nodes:  # nodes that never reported "ready" are still only our children
                if node.proc is not None and node.proc.poll() is None:
                    node.proc.kill()
                if node.proc is not None:
                    node.proc.wait()
            for partial in ("lab.json", "inventory.yml"):
                (state_dir / partial).unlink(missing_ok=True)
        raise
    finally:
        os.close(lock)
        for node in nodes:
            if node.proc is not None and node.proc.stdout is not None:
                node.proc.stdout.close()
    elapsed = time.monotonic() - started
    hosts = [n for n in nodes if n.kind == "host"]
    print(
        f"lab up: {len(hosts)} hosts ({hosts[0].name}..{hosts[-1].name}, "
        f"{hosts[0].record['address']}..{hosts[-1].record['address']})"
        f"{', bystander ' + BYSTANDER_ADDRESS if args.bystander else ''}, router {ROUTER_ADDRESS}, "
        f"internet {INTERNET_ADDRESS}:{ECHO_PORT} in {elapsed:.2f}s\n"
        f"inventory: {state_dir / 'inventory.yml'}"
    )
    return 0


def write_state(state_dir: Path, state: dict, nodes: list[Node]) -> None:
    for node in nodes:
        if node.proc is None:
            continue
        record = dict(node.record, pid=node.proc.pid, log=str(node.log))
        record.setdefault("starttime", None)
        if node.kind == "host":
            state["hosts"][node.name] = record
        else:
            state[node.kind] = record
    write_atomic(state_dir / "lab.json", json.dumps(state, indent=2) + "\n")


def write_ssh_config(state_dir: Path, hosts: list[Node]) -> None:
    keys = state_dir / "keys"
    write_atomic(keys / "authorized_keys", (keys / "id_ed25519.pub").read_text(), 0o600)
    for node in hosts:
        write_atomic(
            state_dir / "ssh" / f"{node.name}.sshd_config",
            SSHD_CONFIG.format(
                name=node.name,
                address=node.record["address"],
                host_key=keys / "ssh_host_ed25519_key",
                authorized_keys=keys / "authorized_keys",
            ),
        )


def write_inventory(state_dir: Path, hosts: list[Node], bystander: bool) -> None:
    ssh_args = (
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null "
        "-o IdentitiesOnly=yes -o LogLevel=ERROR"
    )
    group_vars = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(state_dir / "keys" / "id_ed25519"),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": ssh_args,
        "ansible_host_key_checking": False,
        "ansible_pipelining": True,
        # Per-lab ControlPath: another sandbox's lab has the same addresses and must never share a
        # multiplexed connection with this one.
        "ansible_control_path_dir": str(state_dir / "cp"),
        "lab_controller_address": CONTROLLER_ADDRESS,
        "lab_router_address": ROUTER_ADDRESS,
        "lab_internet_address": INTERNET_ADDRESS,
        "lab_echo_port": ECHO_PORT,
    }
    if bystander:
        group_vars["lab_bystander_address"] = BYSTANDER_ADDRESS
    lines = [
        "# Generated by tests/lab/lab.py up; removed by `lab.py down`. Do not edit.",
        "all:",
        "  children:",
        f"    {GROUP}:",
        "      vars:",
    ]
    lines += [f"        {key}: {yaml_scalar(value)}" for key, value in group_vars.items()]
    lines.append("      hosts:")
    for node in hosts:
        lines += [f"        {node.name}:", f"          ansible_host: {node.record['address']}"]
    write_atomic(state_dir / "inventory.yml", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# down


def lab_processes(state: dict) -> dict[int, str]:
    """PIDs of every live process inside a lab node's namespaces -> node name.

    Namespace ids are read live from each node's own (PID + start time verified) process, so only
    processes of this lab are ever matched: its init/sshd/echo server, sshd sessions, and anything
    those started, including processes in namespaces nested inside a host (same uts namespace).
    """
    owners: dict[tuple[str, int], str] = {}
    for name, node in all_nodes(state).items():
        if not alive(node):
            continue
        for kind in ("net", "mnt", "uts"):
            inode = ns_inode(node["pid"], kind)
            if inode is not None:
                owners[(kind, inode)] = name
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for kind in ("net", "mnt", "uts"):
            owner = owners.get((kind, ns_inode(entry, kind)))
            if owner is not None:
                found[int(entry)] = owner
                break
    return found


def teardown(state: dict, *, quiet: bool = False) -> list[str]:
    """Delete the lab's interfaces in the sandbox and kill every process of its nodes.

    Returns what is still left (empty when clean).
    """
    if not same_sandbox(state):
        # Its PIDs would name unrelated processes here; its sandbox took everything with it.
        return []
    links = state.get("links") or []
    # Processes first, while the links still carry their FINs: SSH multiplexing masters on the
    # controller then see their connections close instead of lingering until ControlPersist.
    victims = lab_processes(state)
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while victims and time.monotonic() < deadline:
            for pid in list(victims):
                reap(pid)
                if proc_starttime(pid) is None:
                    del victims[pid]
            if victims:
                time.sleep(0.01)
        if not victims:
            break
    left = [f"process {pid} of {name}" for pid, name in victims.items()]
    if links:
        # Deleting our end of a veth deletes both ends at once, even while the peer's netns dies.
        ip_batch([f"link del {link}" for link in links], force=True)
    existing = set(re.findall(r"^\d+: ([^:@]+)", run(["ip", "-o", "link", "show"]).stdout, re.M))
    left += [f"interface {link}" for link in links if link in existing]
    if left and not quiet:
        print(f"lab down: could not remove: {', '.join(left)}", file=sys.stderr)
    return left


def reap(pid: int) -> None:
    """Collect *pid* if it is our child (when `run` or `up` started it in this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cmd_down(args) -> int:
    require_sandbox()
    state_dir = validate_state_dir(args.dir)
    try:
        state = load_state(state_dir)
    except LabError:
        if not (state_dir / "lab.json").exists():
            print(f"lab down: no lab in {state_dir}; nothing to do")
            if args.purge:
                purge(state_dir)
            return 0
        raise
    if not same_sandbox(state):
        lock = lock_state_dir(state_dir)
        if lock is None:
            raise LabError(
                f"the lab in {state_dir} is running in another sandbox; bring it down from there "
                "(its PIDs and interfaces mean nothing here)"
            )
        os.close(lock)
        print(f"lab down: the lab in {state_dir} was made in another sandbox, gone with it; removing its files")
        left = []
    else:
        left = teardown(state)
    for name in ("lab.json", "inventory.yml"):
        (state_dir / name).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "cp", ignore_errors=True)
    shutil.rmtree(state_dir / "run", ignore_errors=True)
    if args.purge:
        purge(state_dir)
    if left:
        return 1
    print(f"lab down: {len(state['hosts'])} hosts and their router, internet"
          f"{', bystander' if state.get('bystander') else ''} removed")
    return 0


def purge(state_dir: Path) -> None:
    """Remove the state directory (only if it looks like a lab's)."""
    if not state_dir.exists():
        return
    ours = {"lab.json", "lab.lock", "inventory.yml", "keys", "ssh", "logs", "run", "cp"}
    foreign = [p.name for p in state_dir.iterdir() if p.name not in ours]
    if foreign:
        raise LabError(f"--purge: {state_dir} holds files lab.py did not make ({', '.join(sorted(foreign))}); not removing it")
    shutil.rmtree(state_dir)


# --------------------------------------------------------------------------------------------
# exec, probe, status


def find_node(state_dir: Path, name: str) -> dict:
    state = load_state(state_dir)
    if not same_sandbox(state):
        raise LabError(f"the lab in {state_dir} was made in another sandbox; its PIDs mean nothing here")
    nodes = all_nodes(state)
    if name not in nodes:
        raise LabError(f"no node {name!r} in this lab; nodes: {', '.join(nodes)}")
    node = nodes[name]
    if not alive(node):
        raise LabError(f"node {name} (pid {node['pid']}) is not running; see {node.get('log')}")
    return node


def nsenter_argv(node: dict, cmd: list[str]) -> list[str]:
    argv = ["nsenter", "-t", str(node["pid"]), "--net", "--mount", "--uts"]
    cwd = os.getcwd()
    if not (cwd == "/run" or cwd.startswith("/run/")):
        argv.append(f"--wd={cwd}")  # entering a mount ns moves to /; keep relative paths working
    return argv + ["--", *cmd]


def cmd_exec(args) -> int:
    require_sandbox()
    cmd = strip_dashdash(args.cmd)
    if not cmd:
        raise LabError("exec needs a command: lab.py exec --dir DIR NODE -- CMD [ARGS...]")
    node = find_node(validate_state_dir(args.dir), args.node)
    argv = nsenter_argv(node, cmd)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 127  # not reached


def cmd_probe(args) -> int:
    require_sandbox()
    node = find_node(validate_state_dir(args.dir), args.node)
    probe = [sys.executable, str(Path(__file__).resolve()), "_probe", "--address", args.address,
             "--port", str(args.port), "--timeout", str(args.timeout)] + (["--udp"] if args.udp else [])
    proc = subprocess.run(nsenter_argv(node, probe), capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


def cmd_status(args) -> int:
    require_sandbox()
    state_dir = validate_state_dir(args.dir)
    state = load_state(state_dir)
    here = same_sandbox(state)
    print(f"lab in {state_dir} ({'this sandbox' if here else 'another sandbox'}), inventory {state['inventory']}")
    down = 0
    for name, node in all_nodes(state).items():
        up = here and alive(node)
        down += not up
        print(f"  {name:10} pid {node['pid']:>7}  {node['address']:15} {'up' if up else 'DOWN'}")
    return 1 if down else 0


# --------------------------------------------------------------------------------------------
# run


def strip_dashdash(cmd: list[str]) -> list[str]:
    return cmd[1:] if cmd and cmd[0] == "--" else cmd


def cmd_run(args) -> int:
    require_sandbox()
    cmd = strip_dashdash(args.cmd)
    if not cmd:
        raise LabError("run needs a command: lab.py run --hosts N -- CMD [ARGS...]")
    made_dir = args.dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="linuxnet-lab-")) if made_dir else validate_state_dir(args.dir)
    args.dir = str(state_dir)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
    child = None
    try:
        cmd_up(args)
        env = dict(os.environ, LAB_DIR=str(state_dir), LAB_INVENTORY=str(state_dir / "inventory.yml"),
                   LAB_JSON=str(state_dir / "lab.json"), LAB_PY=str(Path(__file__).resolve()))
        child = subprocess.Popen(cmd, env=env)
        return child.wait()
    except KeyboardInterrupt:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        print("lab run: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the teardown finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        down = argparse.Namespace(dir=str(state_dir), purge=made_dir and not args.keep)
        if (state_dir / "lab.json").exists():
            cmd_down(down)
        elif down.purge:
            purge(state_dir)


# --------------------------------------------------------------------------------------------
# Internal payloads: the echo server (runs inside `internet`) and its client (inside any node).


def cmd_echo(args) -> int:
    """Answer '<peer-address> <peer-port>\\n' on TCP and UDP; never exits on its own."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.address, args.port))
    tcp.listen(128)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((args.address, args.port))

    def serve_udp():
        while True:
            _data, peer = udp.recvfrom(2048)
            udp.sendto(f"{peer[0]} {peer[1]}\n".encode(), peer)

    threading.Thread(target=serve_udp, daemon=True).start()
    Path(args.ready_file).write_text(f"{os.getpid()}\n")
    print(f"echo server on {args.address}:{args.port} tcp+udp", file=sys.stderr, flush=True)
    while True:
        conn, peer = tcp.accept()
        with conn:
            try:
                conn.sendall(f"{peer[0]} {peer[1]}\n".encode())
            except OSError:
                pass


def cmd_probe_inner(args) -> int:
    """Ask the echo server who we are; print its answer's address."""
    try:
        if args.udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(args.timeout)
                sock.sendto(b"who am i\n", (args.address, args.port))
                data = sock.recv(2048)
        else:
            with socket.create_connection((args.address, args.port), timeout=args.timeout) as sock:
                sock.settimeout(args.timeout)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(2048)
                    if not chunk:
                        break
                    data += chunk
    except OSError as exc:
        print(f"probe {'udp' if args.udp else 'tcp'} {args.address}:{args.port} failed: {exc}", file=sys.stderr)
        return 1
    words = data.decode(errors="replace").split()
    if not words:
        print(f"probe {args.address}:{args.port}: empty answer", file=sys.stderr)
        return 1
    print(words[0])
    return 0


# --------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab.py",
        description=__doc__.split("\n\n", maxsplit=1)[0] + " Runs only inside tests/sandbox.sh.",
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def lab_options(p, dir_required=True):
        p.add_argument("--hosts", type=int, required=True, metavar="N", help=f"number of sshd hosts, 1..{MAX_HOSTS}")
        if dir_required:
            p.add_argument("--dir", required=True, metavar="STATE_DIR", help="state directory (created if missing)")
        p.add_argument("--prefix", default="lab", help="name prefix: hosts PREFIX1..PREFIXN, bridge PREFIX-br0, ports PREFIX-hI (default: lab)")
        p.add_argument("--bystander", action="store_true",
                       help=f"also start a plain underlay netns at {BYSTANDER_ADDRESS} (no sshd; default route via the router)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for every sshd and the echo server (default 30)")

    p = sub.add_parser("up", help="build the lab and wait until every host accepts SSH",
                       description="Build the lab in this sandbox and wait until every host's sshd answers; "
                                   "writes STATE_DIR/lab.json and STATE_DIR/inventory.yml. "
                                   "On any failure everything already made is removed again.")
    lab_options(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="kill the lab's processes and remove its interfaces",
                       description="Kill every process of the lab (by recorded PID and its namespaces), delete its "
                                   "interfaces, remove lab.json and inventory.yml. Keeps keys/ and logs/ unless --purge.")
    p.add_argument("--dir", required=True, metavar="STATE_DIR")
    p.add_argument("--purge", action="store_true", help="also delete STATE_DIR itself")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("exec", help="run a command inside a node's namespaces",
                       description="Run CMD in NODE's net+mount+uts namespaces (nsenter -t PID). NODE is a host "
                                   "name (lab1..), 'router', 'internet' or 'bystander'. Exits with CMD's status.")
    p.add_argument("--dir", required=True, metavar="STATE_DIR")
    p.add_argument("node", metavar="NODE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("probe", help="ask the internet echo server, from inside NODE, which source address it sees",
                       description="Connect from inside NODE to the echo server and print the source address it "
                                   "saw (one line). Exit 1 if unreachable.")
    p.add_argument("--dir", required=True, metavar="STATE_DIR")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--udp", action="store_true", help="use UDP instead of TCP")
    p.add_argument("--address", default=INTERNET_ADDRESS)
    p.add_argument("--port", type=int, default=ECHO_PORT)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("status", help="list the lab's nodes and whether each is running")
    p.add_argument("--dir", required=True, metavar="STATE_DIR")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("run", help="up, run CMD with LAB_DIR/LAB_INVENTORY set, then down (always)",
                       description="Bring a lab up (in a temporary directory unless --dir), run CMD with LAB_DIR, "
                                   "LAB_INVENTORY, LAB_JSON and LAB_PY in its environment, then bring the lab "
                                   "down whatever happens (CMD failure, Ctrl-C, SIGTERM). Exits with CMD's status.")
    lab_options(p, dir_required=False)
    p.add_argument("--dir", metavar="STATE_DIR", help="state directory (default: a new temporary one, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the temporary state directory (logs) afterwards")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.set_defaults(func=cmd_run)

    return parser


def build_internal_parser() -> argparse.ArgumentParser:
    """Payloads lab.py runs inside nodes; not part of the user interface."""
    parser = argparse.ArgumentParser(prog="lab.py (internal)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("_echo")
    p.add_argument("--address", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ready-file", required=True)
    p.set_defaults(func=cmd_echo)
    p = sub.add_parser("_probe")
    p.add_argument("--address", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--udp", action="store_true")
    p.set_defaults(func=cmd_probe_inner)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    internal = bool(argv) and argv[0] in ("_echo", "_probe")
    args = (build_internal_parser() if internal else build_parser()).parse_args(argv)
    try:
        return args.func(args)
    except LabError as exc:
        print(f"lab.py {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"lab.py {args.command}: interrupted ({exc or 'SIGINT'}); cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
