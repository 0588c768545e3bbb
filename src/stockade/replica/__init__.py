"""One replica on several processes: HTTP workers sharing one port, and what they must share.

A replica is what ``stockade serve`` runs on one machine. With one worker it is one process. With
several, the main process binds the port and runs the *hub*: the rate-limit counters and the
local models' worker processes, which every HTTP worker reaches over a Unix socket. So a call
admitted in one process counts in all of them, and four HTTP workers still mean one copy of each
model in memory and one queue in front of it.
"""

from stockade.replica.serve import serve

__all__ = ["serve"]
