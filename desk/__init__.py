"""The human Tier-2 desk: a Parlant server whose agent stands for the support team.

Every session it hosts is in manual mode, so Parlant stores and relays events
but never generates a reply; operators answer through the chatroom's console.
"""
