"""The one episode loop: every caller that plays a policy in the env (sweep, lockstep batches, rollouts,
recording, whiskers, the sim's own checks) plays through ``play_episode`` or ``play_lockstep``; what varies
(contract checks, simulator signals, whiskers, the recorder) is an ``EpisodeObserver``."""
