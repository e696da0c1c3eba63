# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Input validation. Pure functions: every error names the parameter, the value and the fix.

Everything is validated before the first netlink request, so that bad input changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.linuxnet.netns.plugins.module_utils._common import fail
# what every function here raises (through fail): the role's filters catch it by this name
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError  # noqa: F401  # pylint: disable=unused-import

IFNAMSIZ = 16  # including the terminating NUL


def _printable_ascii(value):
    # every character within 33..126 (printable ASCII but the space), in C rather than a loop
    return value.isascii() and value.isprintable() and ' ' not in value


def ifname(value, param):
    """A Linux interface name: 1-15 bytes, no '/', no whitespace, no ':' (alias syntax)."""
    if not isinstance(value, str) or not value:
        fail(param, value, 'is not an interface name', 'give a non-empty string')
    if not _printable_ascii(value):
        fail(param, value, 'contains whitespace, control or non-ASCII characters',
             'use letters, digits, "-", "_" and "."')
    if len(value.encode()) >= IFNAMSIZ:
        fail(param, value, 'is %d bytes long' % len(value.encode()),
             'interface names are at most %d bytes (IFNAMSIZ)' % (IFNAMSIZ - 1))
    if '/' in value or ':' in value or value in ('.', '..'):
        fail(param, value, 'contains "/" or ":" or is "." / ".."', 'the kernel refuses such interface names')
    return value


def netns_name(value, param):
    """A named namespace: a single file name under /run/netns, never a path that escapes it."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        fail(param, value, 'is not a namespace name', 'give a non-empty string, or omit it for the host')
    if '/' in value or value in ('.', '..'):
        fail(param, value, 'is not a plain name ("/", "." and ".." would escape /run/netns)',
             'give a name such as "ns1"')
    if not _printable_ascii(value):
        fail(param, value, 'contains whitespace, control or non-ASCII characters',
             'use letters, digits, "-", "_" and "."')
    if len(value) > 255:
        fail(param, value, 'is longer than 255 characters', 'use a shorter name')
    return value


def interface_address(value, param):
    """An address with its prefix length, as on an interface: '10.0.0.1/24', 'fd00::1/64'."""
    if not isinstance(value, str) or '/' not in value:
        fail(param, value, 'is not an address in CIDR form', 'write it like 10.0.0.1/24 or fd00::1/64')
    try:
        iface = _ip_interface(value)
    except ValueError:
        fail(param, value, 'is not a valid IPv4 or IPv6 address with prefix length',
             'write it like 10.0.0.1/24 or fd00::1/64')
    if iface.ip == iface.network.network_address and iface.network.prefixlen < iface.max_prefixlen - 1:
        fail(param, value, 'is the network address of its subnet',
             'give a host address, such as %s' % next(iface.network.hosts()))
    return iface


def _ip_interface(value):
    """ipaddress.ip_interface(value) of a text with a "/": an IPv4 address made from its number,
    which ipaddress, given the text, parses twice and prints once (6 us against 3: a network of ten
    thousand pairs has twenty thousand addresses)."""
    address, _slash, length = value.partition('/')
    if ':' in address:
        return ipaddress.ip_interface(value)
    # the prefix length (or netmask) as given: the same function reads it, with the same refusals
    return ipaddress.IPv4Interface((int(ipaddress.IPv4Address(address)), length))


# built once (ipaddress objects do not change): ip_network() parses its text each time, and most
# of ten thousand routes are default routes
_DEFAULT4 = ipaddress.ip_network('0.0.0.0/0')
_DEFAULT6 = ipaddress.ip_network('::/0')


def prefix(value, param, allow_default=True):
    """A destination or source prefix: 'default', '10.0.0.0/24', 'fd00::/64'. Host bits must be 0."""
    if allow_default and value in ('default', '0.0.0.0/0'):
        return _DEFAULT4
    if allow_default and value == '::/0':
        return _DEFAULT6
    if not isinstance(value, str):
        fail(param, value, 'is not a prefix', 'write it like 10.0.0.0/24')
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if 'has host bits set' in str(exc):
            net = ipaddress.ip_network(value, strict=False)
            fail(param, value, 'has host bits set', 'did you mean %s?' % net)
        fail(param, value, 'is not a valid IPv4 or IPv6 prefix', 'write it like 10.0.0.0/24 or fd00::/64')


def address(value, param):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        fail(param, value, 'is not a valid IPv4 or IPv6 address', 'write it like 10.0.0.1 or fd00::1')


def same_family(param, value, family, other_param, other_value):
    if value.version != family:
        fail(param, str(value), 'is IPv%d but %s=%r is IPv%d' % (value.version, other_param, str(other_value), family),
             'use addresses of one family in one route')


def integer(value, param, low, high, fix):
    """An int option's value within low..high. Ansible's int type lets a YAML boolean through as
    itself (True is an int to Python): refused here, or `table: true` would be table 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(param, value, 'is not an integer', fix)
    if not low <= value <= high:
        fail(param, value, 'is outside %d..%d' % (low, high), fix)
    return value


def mtu(value, param):
    # what the kernel takes for a veth and a bridge (ETH_MIN_MTU..ETH_MAX_MTU)
    if value is None:
        return None
    return integer(value, param, 68, 65535, 'give an MTU from 68 to 65535, such as 1500')


# what Ansible turns into a string without a word (`name: [a]` the namespace "['a']", YAML's
# `name: no` the namespace "False"); a number stays a number's text (`name: 5`), as Ansible has it
_NOT_TEXT = ((bool, 'a boolean'), (list, 'a list'), (dict, 'a mapping'))


def _text(value, param):
    for cls, what in _NOT_TEXT:
        if isinstance(value, cls):
            fail(param, value, 'is %s, not a string' % what, 'give one value; quote it if YAML reads it as something else')


def unconverted(spec, params, path=''):
    """Refuse, in the arguments as the module was given them (before Ansible converted them), a
    boolean, list or mapping where the argument spec `spec` takes a string (options with choices
    excepted: Ansible checks those)."""
    _unconverted(_text_checks(spec), params, path)


def _text_checks(spec):
    """[(name, what, checks of its suboptions)] of the options of `spec` that unconverted() looks
    at, `what` being 'text', 'texts' (a list of them), 'dict' or 'dicts' (a list of them): worked
    out once per call rather than once per item - ten thousand items of a few options each."""
    checks = []
    for name, option in spec.items():
        kind = option.get('type', 'str')
        if kind in ('str', 'path') and not option.get('choices'):
            checks.append((name, 'text', None))
        elif kind == 'dict' and option.get('options'):
            checks.append((name, 'dict', _text_checks(option['options'])))
        elif kind == 'list' and option.get('elements') == 'dict' and option.get('options'):
            checks.append((name, 'dicts', _text_checks(option['options'])))
        elif kind == 'list' and option.get('elements') in ('str', 'path'):
            checks.append((name, 'texts', None))
    return checks


_NOT_TEXT_TYPES = tuple(cls for cls, _what in _NOT_TEXT)


def _unconverted(checks, params, path):
    if not isinstance(params, dict):
        return
    for name, what, sub in checks:
        value = params.get(name)
        if value is None:
            continue
        if what == 'text':
            if isinstance(value, _NOT_TEXT_TYPES):
                _text(value, path + name)
        elif what == 'dict':
            _unconverted(sub, value, path + name + '.')
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if what == 'dicts':
                    _unconverted(sub, item, '%s%s[%d].' % (path, name, index))
                elif isinstance(item, _NOT_TEXT_TYPES):
                    _text(item, '%s%s[%d]' % (path, name, index))


def unique(items, key, param):
    """Refuse two list entries that describe the same object."""
    seen = {}
    for index, item in enumerate(items):
        k = key(item)
        if k in seen:
            fail('%s[%d]' % (param, index), k, 'is declared twice (first as %s[%d])' % (param, seen[k]),
                 'declare each object once')
        seen[k] = index


# --- a definition's items checked without Ansible's validator, where that changes nothing -----

# the argument-spec keys exact_items() knows the whole meaning of
_EXACT_SPEC_KEYS = frozenset(('type', 'required', 'elements', 'default', 'choices', 'options'))
_EXACT_TYPES = {'str': str, 'bool': bool, 'int': int}


def exact_items(spec):
    """A function item -> the item as Ansible's ArgumentSpecValidator returns it, or None where
    that validator would convert, refuse or warn about something in it - for the items of a list
    option whose suboptions are `spec`; or None when `spec` uses what the function does not know.

    Most items of a large definition are plain: every value already of its option's type, every
    option named as it is spelled. For those the validator does nothing but fill in the options
    left out (their default, or None); doing only that costs a fifth of its time (ten thousand
    namespaces: about 0.2 s instead of 1). Anything else - a None where a default or a value is required, a string where a boolean goes,
    an unknown or missing required key, a value outside the choices, a path with ~ or $ - makes
    the caller hand the list to the validator itself, for its conversions and its messages.
    """
    fields = []
    for name, option in spec.items():
        if not _EXACT_SPEC_KEYS.issuperset(option):
            return None
        kind, elements, choices = option.get('type', 'str'), option.get('elements'), option.get('choices')
        sub = None
        if option.get('options') is not None:
            if not (kind == 'dict' or (kind == 'list' and elements == 'dict')):
                return None
            sub = exact_items(option['options'])
            if sub is None:
                return None
        elif kind == 'list':
            if elements not in (None, 'str'):
                return None
        elif kind not in ('str', 'bool', 'int', 'raw', 'path', 'dict'):
            return None
        default = option.get('default')
        # the validator checks and converts a default like any value: take only those it keeps
        if default is not None and (_exact_value(kind, elements, choices, sub, default) is _DECLINE or
                                    isinstance(default, (list, dict))):
            return None
        fields.append((name, kind, elements, choices, sub, bool(option.get('required')), default))
    names = frozenset(spec)

    def check(item):
        if type(item) is not dict or not names.issuperset(item):  # pylint: disable=unidiomatic-typecheck
            return None
        out = {}
        for name, kind, elements, choices, sub, required, default in fields:
            if name not in item:
                if required:
                    return None
                out[name] = default
                continue
            value = item[name]
            if value is None and default is None and not required and choices is None:
                # an optional option given as null is left as null, like one left out (with
                # choices, the validator refuses it)
                out[name] = None
                continue
            value = _exact_value(kind, elements, choices, sub, value)
            if value is _DECLINE:
                return None
            out[name] = value
        return out
    return check


_DECLINE = object()


def _exact_value(kind, elements, choices, sub, value):
    """The value as the validator leaves it, or _DECLINE."""
    # exact types only: a bool is an int to isinstance, a str subclass may be a tagged value
    cls = type(value)
    if value is None:
        return _DECLINE
    if kind in _EXACT_TYPES:
        if cls is not _EXACT_TYPES[kind]:
            return _DECLINE
    elif kind == 'path':
        # the validator expands ~ and $VARS: a path with neither stays as it is
        if cls is not str or '~' in value or '$' in value:
            return _DECLINE
    elif kind == 'dict':
        if cls is not dict:
            return _DECLINE
        if sub is not None:
            value = sub(value)
            if value is None:
                return _DECLINE
    elif kind == 'list':
        if cls is not list:
            return _DECLINE
        if sub is not None:
            value = [sub(element) for element in value]
            if None in value:
                return _DECLINE
        elif elements == 'str':
            if any(type(element) is not str for element in value):  # pylint: disable=unidiomatic-typecheck
                return _DECLINE
            value = list(value)
        else:
            value = list(value)
    if choices is not None:
        if kind == 'list':
            if any(element not in choices for element in value):
                return _DECLINE
        elif value not in choices:
            return _DECLINE
    return value
