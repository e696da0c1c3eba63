"""Planners do no I/O: everything they know of the host comes from the Reader (state layer), and
everything they change goes into the plan as operations that the apply runs. This reads the source
of every planner-layer file and refuses I/O there - file access, `os` calls that touch the host,
sockets, processes, clocks, the session - outside the closures a plan's operations carry
(`call=lambda session: ...`, `requests=lambda resolver: ...`) and the apply-time helpers those call,
named below."""
import ast
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_UTILS = os.path.join(HERE, '..', '..', 'plugins', 'module_utils')

PLANNER_FILES = sorted(name for name in os.listdir(MODULE_UTILS) if name.startswith('_kind') and name.endswith('.py'))
PLANNER_FILES += ['_links.py', '_nft_plan.py', '_plan.py', '_systemd.py', '_validate.py']

# Functions (and classes) of the planner files that only an operation's closure runs, at apply time.
APPLY_TIME = {
    '_kind_netns.py': {'Teardown'},
}

OS_PURE = {'path'}  # os.path.isabs, dirname ...: string work on a path (os.path.lexists etc. are refused below)
OS_PATH_IO = {'exists', 'lexists', 'isdir', 'isfile', 'islink', 'getsize', 'getmtime', 'realpath'}
FORBIDDEN_NAMES = {'open', 'print', 'input'}
FORBIDDEN_MODULES = {'subprocess', 'socket.socket', 'time', 'select', 'fcntl', 'shutil', 'tempfile'}


def _is_operation_closure(node, parents):
    """A lambda given as call= or requests= (what the apply runs)."""
    parent = parents.get(node)
    return isinstance(node, ast.Lambda) and isinstance(parent, ast.keyword) and parent.arg in ('call', 'requests')


def violations(path, allowed):
    with open(path) as handle:
        tree = ast.parse(handle.read())
    parents = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    found = []

    def visit(node, exempt):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in allowed:
            exempt = True
        if isinstance(node, ast.Lambda) and _is_operation_closure(node, parents):
            exempt = True
        if isinstance(node, ast.FunctionDef):
            # a function defined inside a planner and handed to the plan as requests= or call=
            exempt = exempt or node.name in _closure_names(parents.get(node))
        if not exempt:
            if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES and isinstance(node.ctx, ast.Load):
                found.append('%s:%d: %s' % (os.path.basename(path), node.lineno, node.id))
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if dotted:
                    head = dotted.split('.')
                    if head[0] == 'os' and (len(head) < 2 or head[1] not in OS_PURE or
                                            (len(head) > 2 and head[2] in OS_PATH_IO)):
                        found.append('%s:%d: %s' % (os.path.basename(path), node.lineno, dotted))
                    elif any(dotted == m or dotted.startswith(m + '.') for m in FORBIDDEN_MODULES):
                        found.append('%s:%d: %s' % (os.path.basename(path), node.lineno, dotted))
                if node.attr == 'session':
                    found.append('%s:%d: .session' % (os.path.basename(path), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, exempt)
    visit(tree, False)
    return sorted(set(found))


def _closure_names(scope):
    """Names of the nested functions that `scope` passes to the plan as requests= or call=."""
    names = set()
    if scope is None:
        return names
    for node in ast.walk(scope):
        if isinstance(node, ast.keyword) and node.arg in ('call', 'requests') and isinstance(node.value, ast.Name):
            names.add(node.value.id)
    return names


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return None


@pytest.mark.parametrize('name', PLANNER_FILES)
def test_planners_do_no_io(name):
    assert violations(os.path.join(MODULE_UTILS, name), APPLY_TIME.get(name, set())) == []


def test_the_check_finds_io(tmp_path):
    source = tmp_path / '_kind_example.py'
    source.write_text('import os\n\ndef plan(plan, reader):\n'
                      '    text = open("/etc/x").read()\n'
                      '    reader.session.run_in(None, len)\n'
                      '    os.path.lexists("/run/netns/x")\n'
                      '    plan.add(1, None, "x", call=lambda session: open("/proc/x", "w"))\n')
    found = violations(str(source), set())
    assert [line.split(': ')[1] for line in found] == ['open', '.session', 'os.path.lexists']
