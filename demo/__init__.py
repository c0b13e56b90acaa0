"""``make demo``: the bridge working end to end with no Slack workspace and no 2Chat account."""
