"""What every room of the gateway shares: settings (and the page they generate), the
database and its migrations, table definitions, API keys, viewer links, our DICOM node.

Nothing here imports another room of `gateway`."""
