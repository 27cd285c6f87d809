"""The upstream call-centre platform: wire types, code tables, API client and simulator."""
