"""What the unit tests check in a fresh interpreter, once per pyroute2 (pip's, and Debian's 0.7.2 where
installed), all in ONE run of that interpreter: starting Python and importing pyroute2 whole costs
0.2-0.4 s, paid once per Python instead of once per case. In order:

- "engine": the engine imports pyroute2's nf_tables and rtnetlink submodules without the package's
  __init__ (test_pyroute2_import.py);
- "whole": after that, pyroute2 still imports as usual (test_pyroute2_import.py);
- "codec": every check of codec_cases.py against this pyroute2 (test_codec.py), on a codec imported
  afresh, as `python3 codec_cases.py` runs them.

    PYTHONPATH=COLLECTIONS_DIR python3 tests/unit/each_python.py

prints one JSON object {part: {"value": ...} or {"error": traceback}}: a part that breaks fails its
own test and leaves the others their answers. report() runs it, once per Python for the session.
"""
import functools
import json
import os
import subprocess
import sys
import traceback

COLLECTION = 'ansible_collections.linuxnet.netns'


def engine():
    from ansible_collections.linuxnet.netns.plugins.module_utils import (  # noqa: F401
        _codec, _nft_apply, _nft_codec, _nft_plan, _nft_state, _transport)
    nft = _nft_codec.nft_rule_msg.__name__
    # the nf_tables messages came without pyroute2's sockets (asyncio) and config (`uname -p`, `file`)
    # (pyroute2's own modules are gone again by now; what they imported of the standard library stays)
    light = sorted(m for m in ('multiprocessing', 'asyncio', 'platform') if m in sys.modules)
    _codec.ifinfmsg  # noqa: B018 - the import this is about
    return [sorted(m for m in ('pyroute2.iproute', 'pyroute2.ndb', 'pyroute2.ipdb') if m in sys.modules),
            _codec.HAS_PYROUTE2, nft, light]


def whole():
    from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
    _codec.ifinfmsg  # noqa: B018 - imported first without the package __init__
    import pyroute2.netlink.rtnl
    from pyroute2 import IPRoute
    # the real socket classes, not the stand-ins the nf_tables messages were imported with
    from pyroute2.netlink.nfnetlink.nftsocket import NFTSocket
    return [pyroute2.netlink.rtnl.ifinfmsg.ifinfmsg.__name__, IPRoute.__name__, hasattr(NFTSocket, 'bind')]


def codec():
    # the codec as a fresh `python3 codec_cases.py` has it: its message classes from the real
    # pyroute2, not the ones engine() had it import without the package __init__
    for name in [n for n in sys.modules if n == 'ansible_collections' or n.startswith('ansible_collections.')]:
        del sys.modules[name]
    from ansible_collections.linuxnet.netns.tests.unit import codec_cases
    return codec_cases.outcome()


PARTS = (('engine', engine), ('whole', whole), ('codec', codec))


def main():
    answers = {}
    for name, part in PARTS:
        try:
            answers[name] = {'value': part()}
        except Exception:  # every part answers, whatever broke before it
            answers[name] = {'error': traceback.format_exc()}
    print(json.dumps(answers))
    return 0


@functools.lru_cache(maxsize=None)
def report(python, collections_dir):
    """{part: {"value": ...} or {"error": ...}} from `python`, run once per (python, collections_dir).
    Anything else the interpreter says (a warning on stderr, an exit status) fails every part, as it
    failed each case when each had an interpreter of its own."""
    out = subprocess.run([python, os.path.abspath(__file__)], env=dict(os.environ, PYTHONPATH=collections_dir),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    try:
        answers = json.loads(out.stdout)
    except ValueError:
        answers = None
    if out.returncode != 0 or out.stderr or not isinstance(answers, dict) or set(answers) != set(dict(PARTS)):
        failed = {'error': '%s exited %d\nstdout:\n%s\nstderr:\n%s' % (python, out.returncode, out.stdout, out.stderr)}
        return dict((name, failed) for name, _part in PARTS)
    return answers


def value(python, collections_dir, part):
    """What `part` answered under `python`; fails the calling test with the part's traceback."""
    answer = report(python, str(collections_dir))[part]
    assert 'error' not in answer, answer['error']
    return answer['value']


if __name__ == '__main__':
    sys.exit(main())
