"""What the study store keeps for how long, and how big it may grow (gateway.storage.retention)."""
