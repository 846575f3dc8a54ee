"""A fetch from request to files on disk: the validated request and its target PACS
(request.py), queueing it (submit.py), the planner that turns a fetch by R4 patient into
studies to retrieve or to review (plan.py), the job that retrieves them (job.py), and the
follow-up fetch once staff resolve a review item (follow_up.py)."""
