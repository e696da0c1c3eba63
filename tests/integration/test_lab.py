"""The lab fleet (tests/lab/lab.py): namespace "hosts" with real sshd, reachable by Ansible.

Runs only inside the sandbox: ``tests/sandbox.sh python3 -m pytest tests/integration/test_lab.py``.
One lab (3 hosts and a bystander) serves the module; the last tests take it down and check that
nothing of it is left, then exercise ``lab.py run``.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("LINUXNET_SANDBOX") != "1",
    reason="the lab changes networking: run inside tests/sandbox.sh (LINUXNET_SANDBOX=1)",
)

LAB_PY = Path(__file__).resolve().parents[1] / "lab" / "lab.py"
HOSTS = ("lab1", "lab2", "lab3")
ADDRESSES = {"lab1": "192.0.2.11", "lab2": "192.0.2.12", "lab3": "192.0.2.13"}


def lab_cmd(*args, check=True, env=None, timeout=60):
    """Run lab.py with this interpreter; return the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, str(LAB_PY), *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    if check:
        assert proc.returncode == 0, f"lab.py {' '.join(args)} -> {proc.returncode}: {proc.stderr}{proc.stdout}"
    return proc


def ansible_bin():
    """The ansible CLI next to this Python (pyenv), else on PATH."""
    beside = Path(sys.executable).parent / "ansible"
    return str(beside) if beside.exists() else shutil.which("ansible")


def sandbox_links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"^\d+: ([^:@]+)", out, re.M))


def ns_inode(pid, kind):
    try:
        return int(re.search(r"\[(\d+)\]", os.readlink(f"/proc/{pid}/ns/{kind}")).group(1))
    except OSError:
        return None


def processes_in(inodes):
    """PIDs of live processes in any of the namespaces *inodes* ({(kind, inode)})."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and any((kind, ns_inode(entry, kind)) in inodes for kind in ("net", "mnt", "uts")):
            found.append(int(entry))
    return found


def is_running(pid):
    """True unless *pid* is gone or a zombie (pytest may be the sandbox's PID 1 and not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Lab:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.inventory = self.dir / "inventory.yml"

    @property
    def state(self):
        import json
        return json.loads((self.dir / "lab.json").read_text())

    def is_up(self):
        return (self.dir / "lab.json").exists()

    def up(self):
        return lab_cmd("up", "--hosts", "3", "--bystander", "--dir", str(self.dir))

    def down(self, *extra):
        return lab_cmd("down", "--dir", str(self.dir), *extra)

    def exec(self, node, *cmd, check=True):
        return lab_cmd("exec", "--dir", str(self.dir), node, "--", *cmd, check=check)


@pytest.fixture(scope="module")
def lab_once(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    if lab.is_up():
        lab.down("--purge")


@pytest.fixture
def lab(lab_once):
    """The module's lab, brought (back) up if an earlier test took it down."""
    if not lab_once.is_up():
        started = time.monotonic()
        lab_once.up()
        lab_once.up_seconds = time.monotonic() - started
    return lab_once


def test_up_builds_three_hosts_router_internet_and_bystander(lab):
    state = lab.state
    assert {name: host["address"] for name, host in state["hosts"].items()} == ADDRESSES
    assert state["router"]["address"] == "192.0.2.1"
    assert state["internet"]["address"] == "198.51.100.2"
    assert state["bystander"]["address"] == "192.0.2.200"
    assert lab_cmd("status", "--dir", str(lab.dir)).returncode == 0
    assert {"lab-br0", "lab-h1", "lab-h2", "lab-h3", "lab-rtr", "lab-bys"} <= sandbox_links()
    inventory = lab.inventory.read_text()
    for name, address in ADDRESSES.items():
        assert f"{name}:\n          ansible_host: {address}" in inventory
    assert getattr(lab, "up_seconds", 0) < 10


def test_ansible_reaches_every_host_over_ssh(lab):
    ansible = ansible_bin()
    if not ansible:
        pytest.skip("ansible CLI not found")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    ping = subprocess.run([ansible, "-i", str(lab.inventory), "lab", "-m", "ansible.builtin.ping"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=lab.dir, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    for name in HOSTS:
        assert re.search(rf"^{name} \| SUCCESS", ping.stdout, re.M), ping.stdout
    # The SSH session lands in the host's own namespaces: its hostname and its address.
    who = subprocess.run(
        [ansible, "-i", str(lab.inventory), "lab", "-m", "ansible.builtin.command",
         "-a", "sh -c 'echo $(hostname) $SSH_CONNECTION'"],
        capture_output=True, text=True, env=env, timeout=120, cwd=lab.dir, check=False)
    assert who.returncode == 0, who.stdout + who.stderr
    for name, address in ADDRESSES.items():
        assert re.search(rf"^{name} 192\.0\.2\.254 \d+ {re.escape(address)} 22$", who.stdout, re.M), who.stdout


def test_each_host_has_its_own_hostname(lab):
    for name in HOSTS:
        assert lab.exec(name, "hostname").stdout.strip() == name
    assert lab.exec("router", "hostname").stdout.strip() == "router"
    assert subprocess.run(["hostname"], capture_output=True, text=True, check=False).stdout.strip() not in HOSTS


def test_each_host_has_its_own_run_netns_and_sysctl_d(lab):
    lab.exec("lab1", "ip", "netns", "add", "labtest-private")
    lab.exec("lab1", "sh", "-c", "echo '# labtest' > /etc/sysctl.d/99-labtest.conf")
    try:
        assert "labtest-private" in lab.exec("lab1", "ip", "netns", "list").stdout
        assert "labtest-private" not in lab.exec("lab2", "ip", "netns", "list").stdout
        assert "labtest-private" not in os.listdir("/run/netns")
        assert not os.path.exists("/etc/sysctl.d/99-labtest.conf")
        assert lab.exec("lab2", "test", "-e", "/etc/sysctl.d/99-labtest.conf", check=False).returncode == 1
    finally:
        lab.exec("lab1", "ip", "netns", "del", "labtest-private", check=False)
        lab.exec("lab1", "rm", "-f", "/etc/sysctl.d/99-labtest.conf", check=False)


def test_forwarding_starts_off_on_hosts_and_on_at_the_router(lab):
    for name in HOSTS:
        assert lab.exec(name, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert lab.exec("router", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"


def test_hosts_reach_the_internet_echo_through_the_router_with_their_own_address(lab):
    for name, address in ADDRESSES.items():
        route = lab.exec(name, "ip", "-o", "route", "get", "198.51.100.2").stdout
        assert "via 192.0.2.1 dev eth0" in route
        assert lab_cmd("probe", "--dir", str(lab.dir), name).stdout.strip() == address
    assert lab_cmd("probe", "--dir", str(lab.dir), "lab2", "--udp").stdout.strip() == "192.0.2.12"
    assert lab_cmd("probe", "--dir", str(lab.dir), "bystander").stdout.strip() == "192.0.2.200"
    # The sandbox (controller) itself has no route to the internet: only hosts use the router.
    assert subprocess.run(["ip", "route", "get", "198.51.100.2"], capture_output=True, check=False).returncode != 0


def test_lab_py_refuses_outside_the_sandbox(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LINUXNET_SANDBOX"}
    proc = lab_cmd("up", "--hosts", "1", "--dir", str(tmp_path / "x"), check=False, env=env)
    assert proc.returncode == 2
    assert "only runs inside the sandbox" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_down_leaves_no_processes_namespaces_or_interfaces(lab):
    state = lab.state
    nodes = dict(state["hosts"], router=state["router"], internet=state["internet"], bystander=state["bystander"])
    pids = [node["pid"] for node in nodes.values()]
    inodes = {(kind, ns_inode(pid, kind)) for pid in pids for kind in ("net", "mnt", "uts")}
    assert None not in {inode for _name, inode in inodes}
    in_lab = processes_in(inodes)
    assert set(pids) <= set(in_lab)

    lab.down()

    assert [pid for pid in pids if is_running(pid)] == []
    assert [pid for pid in in_lab if is_running(pid)] == []
    assert processes_in(inodes) == []
    assert not {link for link in sandbox_links() if link.startswith("lab-")}
    addresses = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    assert "192.0.2." not in addresses and "198.51.100." not in addresses
    assert not (lab.dir / "lab.json").exists() and not (lab.dir / "inventory.yml").exists()
    assert "nothing to do" in lab.down().stdout  # a second down is a no-op


def test_run_takes_the_lab_down_even_when_the_command_fails(lab_once):
    if lab_once.is_up():
        lab_once.down()
    script = (
        'test -f "$LAB_INVENTORY" && echo "dir=$LAB_DIR" && '
        '"$0" "$LAB_PY" exec --dir "$LAB_DIR" lab2 -- hostname && exit 3'
    )
    proc = lab_cmd("run", "--hosts", "2", "--", "sh", "-c", script, sys.executable, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "lab2" in proc.stdout
    state_dir = re.search(r"^dir=(.*)$", proc.stdout, re.M).group(1)
    assert not os.path.exists(state_dir)
    assert not {link for link in sandbox_links() if link.startswith("lab-")}


def test_run_takes_the_lab_down_when_terminated(lab_once):
    if lab_once.is_up():
        lab_once.down()
    run = subprocess.Popen(
        [sys.executable, str(LAB_PY), "run", "--hosts", "1", "--", "sh", "-c", 'echo "dir=$LAB_DIR"; exec sleep 60'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = ""
        while not line.startswith("dir="):
            line = run.stdout.readline()
            assert line, run.stderr.read()
        state_dir = line.strip()[4:]
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) != 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert not os.path.exists(state_dir)
    assert not {link for link in sandbox_links() if link.startswith("lab-")}
