"""The agent and supervisor web panel: server-rendered pages served by the API component, reaching the
engine only through the API's door (the services), with the same permission checks (README "Web
panel")."""
