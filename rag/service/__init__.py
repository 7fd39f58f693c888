"""The knowledge base served to another process or machine: its calls, their messages, the transports."""
