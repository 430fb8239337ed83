"""`stylegan ui`: an interactive page over a model in this process or a running `stylegan serve`.

session.py  what the page does, without Gradio (a Session over a Generator or a Client)
app.py      the Gradio page and its API endpoints (/generate, /mix, /edit, /interpolate, /project)
cli.py      the command line; Gradio (the `ui` extra) is imported only once the settings are checked
"""
