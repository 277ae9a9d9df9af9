"""The planner: an optimised battery schedule over the horizon (a linear programme solved with HiGHS).

`config` (the site file's `planner:` block), `model` (the pure LP: inputs, the matrix, the plan read back),
`inputs` (a forecast, the site's limits and rates -> the LP's inputs), `persistence` (the stand-in forecast
until `controller.forecast` lands), `solver` (highspy: imported only by the child process and by tools),
`child` (the child process's main loop) and `runner` (the daemon's side of the child process).
The daemon never imports numpy or highspy: `runner` starts `child`, which does.
"""
