"""Live progress of job groups: the hub (hub.py) keeps one watch (watch.py) per watched
group and fans its messages (messages.py) out to each subscription (subscription.py)."""
