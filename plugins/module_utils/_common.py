# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The words every part of the engine shares: its errors, how a namespace is named in messages
and diff keys, the mark on what it made. Imports nothing of the collection, so that any file
can import it without stacking on another planner.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import gc

# Every interface we create carries this alias (`ip link` shows it as "alias linuxnet.netns"), so
# that what we made can be told from what the user made.
OWNER_ALIAS = 'linuxnet.netns'


def quiet_collector():
    """No cyclic garbage collection for the rest of the process: a module run, the boot script.
    A run builds objects and keeps nearly all of them until it exits (the arguments and their
    validated copies, the state it read, the plan), and the collector walks all of them again each
    time their number has grown by a quarter: a re-run at ten thousand namespaces spent 0.5-0.9 s
    in it, for next to no garbage (its peak memory stayed within 2%). Nor at exit: the
    interpreter's last collections would walk whatever is left once more (0.15-0.2 s of a re-run
    at ten thousand namespaces on a quiet machine, more on a busy one, after its result was
    written), unless it is all frozen by then; what the process holds goes with it."""
    gc.disable()
    atexit.register(gc.freeze)


# A ValueError, so that code which already tells good values from bad ones with `except
# ValueError` (the nf_tables comment parsers, the role's filters) keeps seeing the engine's
# refusals; _module.run catches EngineError alone, so a ValueError of any other origin (a bug)
# is a traceback, not a refusal.
class EngineError(ValueError):
    """A refusal the engine makes on purpose, before anything is applied. The message names the
    parameter (its path, like `pairs[2].peer.name`), the value and what would fix it."""


class ValidationError(EngineError):
    """The input is wrong in itself, whatever the host holds (found before anything is read)."""


class PlanError(EngineError):
    """The input cannot be carried out on this host as it is: the desired state cannot be reached
    without touching something the user did not ask for (found at planning time)."""


def fail(param, value, problem, fix):
    """Refuse `value` of parameter `param` (its path): say what is wrong with it and how to fix it."""
    raise ValidationError('%s=%r %s; %s' % (param, value, problem, fix))


def where(ns):
    """A namespace as a message says it: `netns NAME`, or `the host`."""
    return 'netns %s' % ns if ns is not None else 'the host'


def ns_key(ns):
    """A namespace as a diff key says it: its name, or `(host)`."""
    return ns if ns is not None else '(host)'


def require_namespace(plan, reader, ns, param, state='present'):
    """A namespace an object is declared in must exist - unless the object is declared absent: a
    namespace that is gone took its objects with it (a teardown can run twice, or resume)."""
    if state != 'absent' and not reader.will_exist(ns):
        if reader.removing.get(ns) == 'purge':
            raise PlanError('%s=%r: network namespace %r is removed by purge in the same task (this collection '
                            'made it and the task does not declare it); declare it in namespaces to keep it'
                            % (param, ns, ns))
        if ns in reader.removing:
            raise PlanError('%s=%r: network namespace %r is declared absent in the same task' % (param, ns, ns))
        if not assume_namespace(plan, reader, ns, param):
            raise PlanError('%s=%r: network namespace %r does not exist; create it first with '
                            'linuxnet.netns.netns' % (param, ns, ns))


def assume_namespace(plan, reader, ns, param):
    """Check mode: take the missing namespace `ns` as made by an earlier task - empty, and made
    before this task runs, so that later planners of the run see it as the plan creating it.
    False in a real run, and for a namespace this task removes."""
    if ns in reader.removing or not plan.assume(
            ('netns', ns), 'netns %s does not exist; assumed created by an earlier task (%s=%r)' % (
                ns, param.lstrip('.'), ns)):
        return False
    reader.creating.add(ns)
    return True


def info_entry(result, ns):
    """netns_info's entry for namespace `ns` (None: the host), where a kind's report adds to it."""
    return result['host'] if ns is None else result['netns'][ns]
