"""The notebook layer: what the workshop's notebooks use, on top of the core library.

    from reglab.lab import Workshop, checks, exercises

- :class:`Workshop` (``workshop``): each action does the work through reglab and prints the
  equivalent command line;
- ``checks``: the checkpoints, which raise when a step did not work;
- ``exercises``: checks that say *Correct* or *Not yet* with a hint, and never raise;
- ``widgets``: a login form, a registry browser, a status panel;
- ``display``: a progress bar and one-line errors in Jupyter.

The core (``reglab.*`` outside this package) never imports from here.
"""

from reglab.lab import checks, exercises, widgets
from reglab.lab.workshop import Workshop

__all__ = ["Workshop", "checks", "exercises", "widgets"]
