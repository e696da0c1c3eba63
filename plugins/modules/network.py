#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network
'''

EXAMPLES = r'''
'''

RETURN = r'''
'''

from ansible_collections.linuxnet.netns.plugins.module_utils import _network


def main():
    _network.main()


if __name__ == '__main__':
    main()
