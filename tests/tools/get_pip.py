"""Stand-in for the get-pip.py script that ansible-test downloads to bootstrap pip into the empty
virtual environments of its sanity tests (only ansible's CI file host serves it, and that host is not
reachable from every machine). It takes get-pip.py's arguments: install pip from the wheel that
Python's own ensurepip bundles, then `pip install` the requested packages (pip==24.2 ...) from the
package index as usual. tests/tools/sanity.sh puts it where ansible-test looks for a cached copy."""
import subprocess
import sys

GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')  # get-pip.py options that pip itself does not take

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own environment, and the
# install below must read the machine's pip configuration (index, certificates) like any pip.
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install']
                      + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY])
