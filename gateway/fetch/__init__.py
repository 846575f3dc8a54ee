"""A fetch from request to files on disk: the validated request, the planner that turns it
into studies to retrieve (matching, review queue), the job that retrieves them, and the
follow-up fetch once staff resolve a review item."""
