"""Studies a PACS pushes to us unasked: the receiver that matches and files them, and the
recovery that finds pushed studies left unmatched by a crash."""
