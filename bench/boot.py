"""The boot's re-apply of a saved network against the network module's own converge of it (issue 13).

Each side runs in a fresh "machine" of its own (tests/lab/machine.sh: new network, mount and pid
namespaces, the directories the collection writes bound from one directory - the machine's disk -
an empty /run/netns), so both start from a kernel with nothing of the network in it:
  converge  the `network` module run directly (python MODULE ARGS, no Ansible) with `save`: the bridge
            network the role makes (N namespaces on a bridge, veth pairs, default routes, MASQUERADE,
            scoped forwarding), timed from the interpreter's start to its exit;
  boot      a new machine on the disk the converge wrote: the ExecStart lines of the two installed
            units, `--part host` then `--part uplink`, as systemd runs them at boot, timed together.
The target: the boot takes no longer than the converge. Runs inside the benchmark's sandbox only.
"""
import ipaddress
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX, VETH, BRIDGE, NET, UPLINK = 'btns', 'btv', 'btbr0', '10.210.0.0/20', 'btup0'

MACHINE_SH = os.path.join(REPO, 'tests', 'lab', 'machine.sh')  # fresh namespaces, the collection's directories from a disk


def network(n):
    """The network module's arguments: the role's bridge recipe for n namespaces, saved."""
    net = ipaddress.ip_network(NET)
    gateway = net.network_address + 1
    namespaces, pairs, routes = [], [], []
    for i in range(n):
        ns = '%s%d' % (PREFIX, i)
        namespaces.append({'name': ns})
        pairs.append({'name': '%s%d' % (VETH, i), 'master': BRIDGE,
                      'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['%s/%d' % (gateway + 1 + i, net.prefixlen)]}})
        routes.append({'netns': ns, 'gateway': str(gateway)})
    return {'namespaces': namespaces, 'bridges': [{'name': BRIDGE, 'addresses': ['%s/%d' % (gateway, net.prefixlen)]}],
            'pairs': pairs, 'routes': routes,
            'forwarding': [{'ipv4': True, 'restrict_to': [NET], 'inbound_from': []}],
            'masquerade': [{'source': NET, 'out_interface': UPLINK}],
            'save': {'name': 'bench'}}


def _machine(disk, argv):
    """Run argv in a fresh machine on `disk`; (wall seconds, stdout)."""
    start = time.perf_counter()
    out = subprocess.run([MACHINE_SH, disk] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    wall = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError('%s failed (%d): %s %s' % (argv[:3], out.returncode, out.stdout[-2000:], out.stderr[-2000:]))
    return wall, out.stdout


def _timed(command):
    # the command's own wall time, measured inside the machine (the machine's set-up is not counted)
    return ['bash', '-c', 's=$(date +%%s%%N); { %s; } >&2; e=$(date +%%s%%N); echo "took $(( (e - s) / 1000 ))"' % command]


def _took(stdout):
    return int(re.search(r'took (\d+)', stdout).group(1)) / 1e6


def boot_rows(tmp, python, n, repeat=1):
    """[row]: the converge and the boot of n namespaces, each the fastest of `repeat`."""
    import shutil
    ansible_only = os.path.join(tmp, 'boot-ansible-only')
    collections = os.path.join(tmp, 'boot-collections')
    if not os.path.exists(collections):
        os.makedirs(os.path.join(collections, 'ansible_collections', 'linuxnet'))
        os.symlink(REPO, os.path.join(collections, 'ansible_collections', 'linuxnet', 'netns'))
        os.makedirs(ansible_only)
        import ansible
        os.symlink(os.path.dirname(ansible.__file__), os.path.join(ansible_only, 'ansible'))
    args = os.path.join(tmp, 'boot-args.json')
    with open(args, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': network(n)}, handle)
    module_file = os.path.join(REPO, 'plugins', 'modules', 'network.py')
    module = 'PYTHONPATH=%s:%s %s %s %s' % (collections, ansible_only, python, module_file, args)
    best = {}
    for attempt in range(repeat):
        disk = os.path.join(tmp, 'boot-disk-%d' % attempt)
        _wall, out = _machine(disk, _timed(module + ' > %s/result.json' % disk))
        converge = _took(out)
        with open(os.path.join(disk, 'result.json')) as handle:
            result = json.load(handle)
        if result.get('failed') or not result.get('changed'):
            raise RuntimeError('boot N=%d: the converge failed: %s' % (n, result.get('msg')))
        units = {}
        for unit in ('linuxnet-netns.service', 'linuxnet-netns-uplink.service'):
            with open(os.path.join(disk, 'etc', 'systemd', 'system', unit)) as handle:  # the disk's copy
                units[unit] = [line.split('=', 1)[1] for line in handle.read().splitlines()
                               if line.startswith('ExecStart=')][0]
        # the boot, then a check that it made the whole network: the module again, changed=0
        command = '%s && %s' % (units['linuxnet-netns.service'], units['linuxnet-netns-uplink.service'])
        _wall, out = _machine(disk, ['bash', '-c', '%s; %s > $0/check.json' % (
            ' '.join("'%s'" % part.replace("'", "'\\''") for part in _timed(command)), module), disk])
        boot = _took(out)
        with open(os.path.join(disk, 'check.json')) as handle:
            check = json.load(handle)
        ok = not check.get('failed') and not check.get('changed')
        for step, seconds in (('converge', converge), ('boot', boot)):
            if step not in best or seconds < best[step]['wall']:
                best[step] = dict(method='saved plan', step=step, n=n, wall=seconds, module=seconds, ok=ok,
                                  changed=int(bool(check.get('changed'))))
        shutil.rmtree(disk, ignore_errors=True)
    return [best['converge'], best['boot']]


def boot_targets(rows):
    runs = dict((r['step'], r) for r in rows if r['method'] == 'saved plan')
    label = 'boot re-apply of a saved N=1000 bridge network <= the network module\'s own converge of it'
    if len(runs) < 2:
        return [(label, 'not measured', 'n/a')]
    conv, boot = runs['converge'], runs['boot']
    label = label.replace('N=1000', 'N=%d' % conv['n'])
    measured = '%.2f s vs %.2f s (%.2fx)%s' % (boot['wall'], conv['wall'], boot['wall'] / conv['wall'],
                                               '' if boot['ok'] else '; the boot left the network incomplete')
    return [(label, measured, 'PASS' if boot['ok'] and boot['wall'] <= conv['wall'] else 'FAIL')]


if __name__ == '__main__':
    if os.environ.get('LINUXNET_SANDBOX') != '1':
        sys.exit('bench/boot.py changes networking: run it inside the sandbox, tests/sandbox.sh python3 bench/boot.py N')
    import tempfile
    work = tempfile.mkdtemp(prefix='lnboot-')
    try:
        found = boot_rows(work, sys.executable, int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
                          int(sys.argv[2]) if len(sys.argv) > 2 else 1)
        for row in found:
            print('%-9s N=%d %.2f s ok=%s' % (row['step'], row['n'], row['wall'], row['ok']))
        for target in boot_targets(found):
            print(' | '.join(target))
    finally:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
