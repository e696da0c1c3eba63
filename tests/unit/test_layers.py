"""module_utils in layers that import only downward: codec <- transport <- state <- planners <- apply
<- module glue. A file may import its own layer and the ones below, at module level or inside a
function alike."""
import ast
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_UTILS = os.path.join(HERE, '..', '..', 'plugins', 'module_utils')
PACKAGE = 'ansible_collections.linuxnet.netns.plugins.module_utils'

CODEC, TRANSPORT, STATE, PLANNERS, APPLY, GLUE = range(6)
LAYERS = {
    # the shared words (errors, how a namespace is named) import nothing of ours: any layer may use them
    '_common': CODEC,
    # how a module run imports the engine (imported first by each module stub): nothing of ours
    '_bytecode': CODEC,
    '_codec': CODEC, '_nft_codec': CODEC,
    '_transport': TRANSPORT,
    # files written at apply time (closures of operations call them)
    '_files': TRANSPORT,
    # the rule model (what a rule of ours is) is read into state as well as planned
    '_nft_rules': STATE, '_state': STATE, '_nft_state': STATE,
    # a transaction: a plan sent over the transport; ensure() reads the state again
    '_nft_apply': STATE,
    '_plan': PLANNERS, '_nft_plan': PLANNERS, '_links': PLANNERS, '_validate': PLANNERS, '_kind': PLANNERS,
    '_systemd': PLANNERS,
    '_apply': APPLY,
    # the kinds stand side by side: none imports another (they share _links, _nft_plan, _common)
    '_kinds': GLUE,
    '_module': GLUE, '_network': GLUE, '_info': GLUE,
    # a run of the engine around a planner (a module's, or one without Ansible's module wrapper)
    '_run': GLUE, '_direct': GLUE,
    # saved plans: the boot script's entry point, below _network (it imports no Ansible)
    '_saved': GLUE,
}


KINDS = sorted(name for name in os.listdir(MODULE_UTILS) if name.startswith('_kind_') and name.endswith('.py'))
LAYERS.update((name[:-3], PLANNERS) for name in KINDS)


def imports(name):
    """The module_utils files `name` imports, wherever in the file."""
    with open(os.path.join(MODULE_UTILS, name + '.py')) as source:
        tree = ast.parse(source.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + '.'):
            found.add(node.module[len(PACKAGE) + 1:])
        elif isinstance(node, ast.Import):
            found.update(alias.name[len(PACKAGE) + 1:] for alias in node.names if alias.name.startswith(PACKAGE + '.'))
    return found


FILES = sorted(name[:-3] for name in os.listdir(MODULE_UTILS) if name.endswith('.py') and name != '__init__.py')


@pytest.mark.parametrize('name', [name for name in FILES if name in LAYERS])
def test_imports_only_downward(name):
    upward = sorted(other for other in imports(name) if LAYERS.get(other, -1) > LAYERS[name])
    assert not upward, '%s imports %s, a layer above it' % (name, upward)


def test_the_codec_imports_nothing_of_ours_but_itself():
    for name in ('_codec', '_nft_codec'):
        assert imports(name) <= {'_codec'}, name


def test_the_bytecode_cache_imports_nothing_of_ours():
    # it must be in place before the first engine file is imported
    assert imports('_bytecode') == set()


@pytest.mark.parametrize('name', [name[:-3] for name in KINDS])
def test_kinds_import_no_other_kind(name):
    others = sorted(other for other in imports(name) if other.startswith('_kind_'))
    assert not others, '%s imports %s: kinds stand side by side' % (name, others)


def test_every_file_has_a_layer():
    assert sorted(set(FILES) - set(LAYERS)) == []
