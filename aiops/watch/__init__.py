"""Follow a cluster through the watch API and detect failures within seconds."""

from aiops.watch.episodes import Episode, Episodes, Outcome
from aiops.watch.watcher import WATCHED_KINDS, Stats, Watcher, WatchOptions

__all__ = ["WATCHED_KINDS", "Episode", "Episodes", "Outcome", "Stats", "WatchOptions",
           "Watcher"]
