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
