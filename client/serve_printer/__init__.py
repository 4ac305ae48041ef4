"""`printfabric serve-printer`: a local IPPS printer that forwards what it receives to PrintFabric.

The operating system adds it as a driverless (IPP Everywhere) printer on localhost; jobs are
kept in a durable queue in the state folder and sent to the cloud under the logged-in user,
later if the cloud cannot be reached right now.
"""
