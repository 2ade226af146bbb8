from medagent.cli import app

app()
