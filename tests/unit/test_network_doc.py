"""network.py's list options are documented from the single modules (tests/tools/network_doc.py),
and what that documents is what the module takes."""
import contextlib
import io
import os
import shutil
import sys
import types

from ansible_collections.linuxnet.netns.plugins.module_utils import _network

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, 'tests', 'tools', 'network_doc.py')
sys.path.insert(0, os.path.dirname(TOOL))

import network_doc  # noqa: E402


def ours(name):
    return name == 'ansible_collections' or name.startswith('ansible_collections.')


def tool(*args):
    """`network_doc.py ARGS` run in this process (no interpreter to start, no yaml and ansible to import
    again): its exit status, and what it printed on stdout and stderr together. A run on another
    checkout (--root) imports that checkout's module_utils in place of this one's: this one's are put
    back afterwards, and sys.path as it was."""
    modules = dict((name, module) for name, module in sys.modules.items() if ours(name))
    path = list(sys.path)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                status = network_doc.main(list(args))
            except SystemExit as exc:  # as the interpreter reports it
                status = exc.code
                if status is not None and not isinstance(status, int):
                    print(status, file=sys.stderr)
                    status = 1
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(modules)
        sys.path[:] = path
    return types.SimpleNamespace(returncode=status or 0, stdout=out.getvalue())


def documented_options(root=REPO):
    doc = network_doc.load_yaml(network_doc.string_constant(os.path.join(root, 'plugins', 'modules', 'network.py'),
                                                            'DOCUMENTATION'))
    return doc['options']


def test_network_doc_is_current():
    out = tool('--check')
    assert out.returncode == 0, out.stdout


def compare(spec, documented, path=''):
    """Where an argument spec and its documentation disagree (what validate-modules checks)."""
    problems = []
    for name in sorted(set(spec) | set(documented)):
        where = path + name
        if name not in documented:
            problems.append('%s: in the argument spec, not documented' % where)
            continue
        if name not in spec:
            problems.append('%s: documented, not in the argument spec' % where)
            continue
        s, d = spec[name], documented[name]
        for key, fallback in (('type', 'str'), ('elements', None), ('default', None), ('choices', None),
                              ('required', False)):
            if s.get(key, fallback) != d.get(key, fallback):
                problems.append('%s: %s is %r in the spec, %r documented' % (where, key, s.get(key), d.get(key)))
        if s.get('options') or d.get('suboptions'):
            problems += compare(s.get('options') or {}, d.get('suboptions') or {}, where + '.')
    return problems


def test_documented_options_are_the_argument_spec():
    spec = _network.argument_spec()
    assert compare(spec, documented_options()) == []


def test_generated_part_is_every_list_of_the_argument_spec():
    spec = _network.argument_spec()
    generated = network_doc.generated_options()
    assert list(generated) == [kind.option for kind in _network.KINDS]
    assert [kind for _file, kind in network_doc.kinds()] == list(_network.KINDS)
    assert compare(dict((name, spec[name]) for name in generated), generated) == []


def test_references_are_rewritten_for_the_items():
    pairs = network_doc.generated_options()['pairs']['suboptions']
    assert 'O(pairs[].peer.mtu)' in pairs['mtu']['description']
    assert 'O(pairs[].mtu)' in pairs['peer']['suboptions']['mtu']['description']
    namespaces = network_doc.generated_options()['namespaces']['suboptions']
    # "Mutually exclusive with O(namespaces)." is about netns's top-level form, not about an item
    assert namespaces['name']['description'] == 'Name of the namespace.'
    assert network_doc.rewrite_refs('O(rules) and O(netns=x), O(purge=true), O(a.b#module:c)', {'netns'}, 'rules',
                                    'masquerade') == 'O(masquerade) and O(masquerade[].netns=x), O(purge=true), O(a.b#module:c)'


def copy_collection(tmp_path):
    root = tmp_path / 'netns'
    for sub in ('plugins/modules', 'plugins/doc_fragments', 'plugins/module_utils'):
        shutil.copytree(os.path.join(REPO, sub), str(root / sub))
    return root


def test_check_notices_a_stale_network_doc(tmp_path):
    root = copy_collection(tmp_path)
    veth = root / 'plugins' / 'modules' / 'veth.py'
    veth.write_text(veth.read_text().replace('description: Whether the first end is up.',
                                             'description: Whether the first end is up, C(changed here).'))
    out = tool('--check', '--root', str(root))
    assert out.returncode == 1 and 'out of date' in out.stdout and 'C(changed here)' in out.stdout
    assert tool('--root', str(root)).returncode == 0
    assert documented_options(root)['pairs']['suboptions']['up']['description'] == \
        'Whether the first end is up, C(changed here).'
    assert tool('--check', '--root', str(root)).returncode == 0
    # the hand-written part stays as it was
    assert documented_options(root)['purge'] == documented_options()['purge']


def test_options_from_a_doc_fragment_reach_the_items(tmp_path):
    """A module documenting `netns` through linuxnet.netns._common.NETNS: its list items take it
    (every top-level option is also an option of an item), so network's items document it too."""
    root = copy_collection(tmp_path)
    bridge = root / 'plugins' / 'modules' / 'bridge.py'
    text = bridge.read_text()
    text = text.replace('  netns: &netns\n    description: Namespace of the bridge; omit for the host.\n    type: str\n', '')
    text = text.replace('      netns: *netns\n', '')
    text = text.replace('  - linuxnet.netns._common\n', '  - linuxnet.netns._common\n  - linuxnet.netns._common.NETNS\n')
    bridge.write_text(text)
    assert 'netns' not in network_doc.load_yaml(network_doc.string_constant(str(bridge), 'DOCUMENTATION'))['options']
    assert tool('--root', str(root)).returncode == 0
    netns = documented_options(root)['bridges']['suboptions']['netns']
    assert netns['type'] == 'str' and 'Name of the network namespace' in netns['description'][0]


def test_missing_markers_are_an_error(tmp_path):
    root = copy_collection(tmp_path)
    network = root / 'plugins' / 'modules' / 'network.py'
    network.write_text(network.read_text().replace(network_doc.BEGIN + '\n', ''))
    out = tool('--check', '--root', str(root))
    assert out.returncode == 1 and 'BEGIN generated' in out.stdout
