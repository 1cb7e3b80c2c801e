"""The steps of a build: announced while they run, and timed.

Every step without a count of its own is a progress bar named while it runs (the app shows
each by its name), so no part of a build passes unannounced; the steps with counts
(embedding, new words, translations) have bars of their own and are only timed here. On a
terminal a step shows once it has taken STEP_DISPLAY_DELAY, so a quick one, or a build that
fails at once, prints nothing. ``timings`` (``build_index(timings=...)``) gets the seconds
of each step: the supported way to see where a build's time goes.
"""

from __future__ import annotations

from time import perf_counter

STEP_DISPLAY_DELAY = 0.5  # seconds before a step without a count of its own shows on a terminal


class Steps:
    """The running step of a build, its bar and its clock."""

    def __init__(self, enabled: bool, timings: dict[str, float] | None = None) -> None:
        self.enabled = enabled
        self.timings = timings
        self._bar = None
        self._name: str | None = None
        self._started = 0.0

    def start(self, name: str, bar: bool = True) -> None:
        """End the running step, if any, and start ``name`` (with a bar of its own unless
        ``bar`` is False: a step that shows its own progress)."""
        self.end()
        self._name, self._started = name, perf_counter()
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=1, desc=name, unit="step", disable=not self.enabled, delay=STEP_DISPLAY_DELAY,
                             bar_format="{desc}: {elapsed}")

    def end(self) -> None:
        """End the running step, if any."""
        if self._name is not None and self.timings is not None:
            self.timings[self._name] = self.timings.get(self._name, 0.0) + perf_counter() - self._started
        self._name = None
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()
            self._bar = None
