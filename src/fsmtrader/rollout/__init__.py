"""A safe rollout's guards of a running session: the loss breakers (``breakers``, pure),
the kill switch (``kill_switch``: a ``STOP`` file in the state directory, or a signal that
writes it) and the session-side shell that runs both between two stimuli (``guard``)."""
