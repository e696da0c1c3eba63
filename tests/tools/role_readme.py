"""Generate a role's README.md from its meta/argument_specs.yml.

    python3 tests/tools/role_readme.py roles/bridge_network           # write README.md
    python3 tests/tools/role_readme.py --check roles/bridge_network   # exit 1 if it is out of date

Also checks that defaults/main.yml and the argument specs agree: the same variables, the same
default values (an option without a default in the spec must default to null). Either mode exits 1
on a disagreement, so a default changed in one place only never goes unnoticed.

Ansible markup in descriptions becomes Markdown: C(x), V(x), O(x), RV(x), E(x) -> `x`; I(x) -> *x*;
B(x) -> **x**; M(a.b.c) -> `a.b.c`; L(text,url) -> [text](url); U(url) -> <url>.
"""

import argparse
import difflib
import os
import re
import sys

import yaml

MARKUP = [
    (re.compile(r'\b[CVOE]\(([^()]*(?:\([^()]*\)[^()]*)*)\)'), r'`\1`'),
    (re.compile(r'\bRV\(([^()]*)\)'), r'`\1`'),
    (re.compile(r'\bM\(([^()]*)\)'), r'`\1`'),
    (re.compile(r'\bI\(([^()]*)\)'), r'*\1*'),
    (re.compile(r'\bB\(([^()]*)\)'), r'**\1**'),
    (re.compile(r'\bL\(([^(),]*),\s*([^()]*)\)'), r'[\1](\2)'),
    (re.compile(r'\bU\(([^()]*)\)'), r'<\1>'),
]


def markdown(text):
    text = ' '.join(str(text).split())
    for pattern, replacement in MARKUP:
        text = pattern.sub(replacement, text)
    return text


def paragraphs(value):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [markdown(v) for v in value]


def cell(text):
    return text.replace('|', '\\|')


def literal(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return '`%s`' % str(value).lower()
    if isinstance(value, (list, dict)):
        return '`%s`' % yaml.safe_dump(value, default_flow_style=True).strip()
    return '`%s`' % value


def rows(name, o):
    """The table rows of one variable, then of its suboptions (a list of dicts' keys as NAME[].KEY)."""
    kind = o.get('type', 'str')
    if kind == 'list' and o.get('elements'):
        kind = 'list of %s' % o['elements']
    required = ' (required)' if o.get('required') else ''
    choices = ', '.join(literal(c) for c in o.get('choices') or [])
    found = ['| `%s`%s | %s | %s | %s | %s |' % (
        name, required, kind, cell(literal(o.get('default'))), cell(choices),
        cell('<br>'.join(paragraphs(o.get('description')))))]
    sub = '%s[].' % name if o.get('type') == 'list' else '%s.' % name
    for option in sorted(o.get('options') or {}):
        found.extend(rows(sub + option, o['options'][option]))
    return found


def collection_name(role_dir):
    galaxy = os.path.join(role_dir, '..', '..', 'galaxy.yml')
    if os.path.exists(galaxy):
        with open(galaxy) as handle:
            meta = yaml.safe_load(handle)
        return '%s.%s' % (meta['namespace'], meta['name'])
    return None


def render(role_dir):
    with open(os.path.join(role_dir, 'meta', 'argument_specs.yml')) as handle:
        specs = yaml.safe_load(handle)['argument_specs']
    role = os.path.basename(os.path.normpath(role_dir))
    collection = collection_name(role_dir)
    fqcn = '%s.%s' % (collection, role) if collection else role
    main = specs.get('main', {})
    out = ['<!-- Generated from meta/argument_specs.yml by tests/tools/role_readme.py; do not edit. -->',
           '', '# %s' % fqcn, '']
    if main.get('short_description'):
        out += [markdown(main['short_description']), '']
    for text in paragraphs(main.get('description')):
        out += [text, '']
    out += ['## Usage', '', '```yaml', '- name: Apply %s' % role, '  hosts: all', '  roles:',
            '    - role: %s' % fqcn, '```', '']
    for name in ['main'] + sorted(n for n in specs if n != 'main'):
        spec = specs[name]
        options = spec.get('options') or {}
        if name == 'main':
            out += ['## Variables', '']
        else:
            out += ['## Entry point `%s`' % name, '']
            if spec.get('short_description'):
                out += [markdown(spec['short_description']), '']
            for text in paragraphs(spec.get('description')):
                out += [text, '']
            if options == (specs.get('main') or {}).get('options'):
                out += ['Takes the same variables as `main`.', '']
                continue
        if not options:
            out += ['No variables.', '']
            continue
        out += ['| Variable | Type | Default | Choices | Description |', '| --- | --- | --- | --- | --- |']
        for option in sorted(options):
            out.extend(rows(option, options[option]))
        out.append('')
    return '\n'.join(out).rstrip('\n') + '\n'


def defaults_mismatches(role_dir):
    """Where defaults/main.yml and the `main` argument spec disagree."""
    with open(os.path.join(role_dir, 'meta', 'argument_specs.yml')) as handle:
        options = (yaml.safe_load(handle)['argument_specs'].get('main') or {}).get('options') or {}
    path = os.path.join(role_dir, 'defaults', 'main.yml')
    defaults = {}
    if os.path.exists(path):
        with open(path) as handle:
            defaults = yaml.safe_load(handle) or {}
    problems = []
    for name in sorted(set(options) | set(defaults)):
        if name not in options:
            problems.append('%s is in defaults/main.yml but not in meta/argument_specs.yml' % name)
        elif name not in defaults:
            problems.append('%s is in meta/argument_specs.yml but not in defaults/main.yml' % name)
        elif options[name].get('default') != defaults[name]:
            problems.append('%s: defaults/main.yml says %r, meta/argument_specs.yml says %r' % (
                name, defaults[name], options[name].get('default')))
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('roles', nargs='+', help='role directories (holding meta/argument_specs.yml)')
    parser.add_argument('--check', action='store_true', help='write nothing; exit 1 if a README is out of date')
    args = parser.parse_args(argv)
    status = 0
    for role_dir in args.roles:
        for problem in defaults_mismatches(role_dir):
            print('%s: %s' % (role_dir, problem), file=sys.stderr)
            status = 1
        readme = os.path.join(role_dir, 'README.md')
        text = render(role_dir)
        current = open(readme).read() if os.path.exists(readme) else ''
        if current == text:
            continue
        if args.check:
            sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       readme, readme + ' (generated)'))
            print('%s is out of date: run python3 tests/tools/role_readme.py %s' % (readme, role_dir),
                  file=sys.stderr)
            status = 1
        else:
            with open(readme, 'w') as handle:
                handle.write(text)
            print('wrote %s' % readme)
    return status


if __name__ == '__main__':
    sys.exit(main())
