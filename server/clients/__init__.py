"""Python clients of a running server: the room client, the sync client, the bot and the demo.
May import anything in server (they sit on top).
"""
