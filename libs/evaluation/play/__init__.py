"""Playing a sweep's episodes: each evaluated episode (``libs.sim.play``'s loop with the contract checks and
simulator signals, scored as an ``EpisodeRecord``)."""
