"""Results as pages: a sweep folder's files (report.json, the per-episode store, plan.json, plots/, whiskers/)
read without locking or writing them, and drawn as one self-contained HTML page (``report.html``).

Only the folder's files are read, never the evaluation code that wrote them, so a page can be drawn for any
sweep folder (finished, running, or from an older version) and the results browser
(``services/report``) can serve any folder safely. Standard library only (plus the backend table of
``libs.policy_api.registry`` for commands); the sweep calls ``write_sweep_plan`` when it starts and
``write_report_html`` beside report.md.
"""
