"""dal-backdoor: how robust does a training loss make a network against backdoors and label noise?

Built from "Dynamics-Aware Loss for Learning with Label Noise" (Li et al.). The package is
organised by concern: ``losses`` (the robust-loss zoo and DAL), ``schedules`` (DAL's q(t) and
lambda(t)), ``data`` (data sets, device-resident loader, label noise, poisoning), ``models``,
``train``, ``evaluate``, ``store``, ``experiments``, ``sweep``, ``report`` and ``cli``.
The trigger library is the separate top-level package ``triggers``.
"""

__version__ = "0.1.0"
