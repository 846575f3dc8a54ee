from gateway.cli.main import app

app(prog_name="pacs-gateway")
