# -*- coding: utf-8 -*-
"""Aggregate callback for bench/run.py: each task result per host (start, end, duration, action,
changed, status, loop items, run_once) and the play recap, written as JSON to $LINUXNET_BENCH_TIMINGS when
the playbook ends. Like ansible.posix.profile_tasks, but machine-readable and per host.

Enable with ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins ANSIBLE_CALLBACKS_ENABLED=linuxnet_bench.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = '''
name: linuxnet_bench
type: aggregate
short_description: per-task durations and changed flags as JSON, for bench/run.py
description:
  - Records, for every task and host, when the runner started and finished, the resolved action,
    whether it changed something and how many loop items it ran; writes them and the recap to the
    file named by the environment variable C(LINUXNET_BENCH_TIMINGS).
requirements:
  - environment variable C(LINUXNET_BENCH_TIMINGS)
'''

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'linuxnet_bench'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('LINUXNET_BENCH_TIMINGS')
        self._started = {}
        self._tasks = []
        self._playbook_start = time.time()

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _record(self, result, status):
        end = time.time()
        host = result._host.get_name()
        task = result._task
        start = self._started.pop((host, task._uuid), end)
        res = result._result or {}
        self._tasks.append({
            'host': host,
            'task': task.get_name(),
            'action': getattr(task, 'resolved_action', None) or task.action,
            'status': status,
            'changed': bool(res.get('changed', False)),
            'items': len(res['results']) if isinstance(res.get('results'), list) else None,
            'run_once': bool(task.run_once),
            'start': start,
            'end': end,
            'duration': end - start,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        if not self._path:
            return
        recap = dict((host, stats.summarize(host)) for host in sorted(stats.processed))
        with open(self._path, 'w') as handle:
            json.dump({'tasks': self._tasks, 'recap': recap, 'playbook_start': self._playbook_start,
                       'playbook_end': time.time()}, handle, indent=1)
