"""What only makes sense inside Jupyter: a progress bar, and errors shown as one line.

Kept out of the core library, which never imports this package.
"""

from __future__ import annotations

from typing import Any

from reglab.base.errors import MAPPED, at_boundary
from reglab.base.progress import COMPLETE, LayerTotals, Progress, TextProgress


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python without IPython
        return None
    return get_ipython()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    shell = _shell()
    return shell is not None and hasattr(shell, "kernel")


def one_line_errors() -> None:
    """In IPython/Jupyter, show reglab's errors as their one line (problem and fix) instead of
    a traceback; the Docker SDK's, HTTP's and the OS's too, mapped by the same function as on
    the command line (``reglab.base.errors.at_boundary``). The cell still fails, so a notebook
    run under nbval still fails too."""
    shell = _shell()
    if shell is None:
        return

    def show(
        shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
    ) -> list[str]:
        stb = [error_line(value)]
        shell._showtraceback(etype, value, stb)  # an error output: the cell counts as failed
        return stb

    shell.set_custom_exc(MAPPED, show)


def error_line(exc: BaseException) -> str:
    """The one line a notebook shows for ``exc``: ``EngineError: problem - fix: ...``."""
    mapped: BaseException = at_boundary(exc) or exc
    return f"{type(mapped).__name__}: {mapped}"


class NotebookProgress:
    """A progress bar in Jupyter (ipywidgets), fed by reglab's progress events.

    It is displayed once, at the first event, with the same initial state every time; later
    updates travel as widget messages, not as new outputs, so a notebook's stored outputs stay
    the same from run to run.
    """

    def __init__(self, action: str) -> None:
        import ipywidgets as widgets

        self.action = action
        self.totals = LayerTotals()
        self.bar = widgets.IntProgress(value=0, max=100, description=action)
        self.label = widgets.Label(value="")
        self.shown = False

    def _show(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        display(widgets.HBox([self.bar, self.label]))
        self.shown = True

    def __call__(self, event: Progress) -> None:
        if not self.shown:
            self._show()
        if event.status == COMPLETE:  # small layers may never report byte totals
            self.bar.value = 100
            self.label.value = self.totals.summary(event.action) if self.totals.total else "done"
            return
        if event.action == "build":
            self.label.value = event.status[:80]
            return
        self.totals.add(event)
        if self.totals.total:
            self.bar.value = int(100 * self.totals.current / self.totals.total)
            self.label.value = self.totals.summary(event.action)


def for_display(action: str) -> NotebookProgress | TextProgress | None:
    """The progress reporter that suits where we run: a bar in Jupyter, none elsewhere."""
    return NotebookProgress(action) if in_notebook() else None


def show_svg(text: str) -> None:
    """Show an SVG drawing in the notebook (reglab.lab.picture's)."""
    from IPython.display import SVG, display

    display(SVG(text))
