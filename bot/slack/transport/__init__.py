"""How Slack's requests reach the listeners: the HTTP endpoint (signature, replays, asking
for a redelivery) or Socket Mode, what each request is for metrics and logs, and who the
bot is. Nothing here imports a listener or the rendering.
"""
