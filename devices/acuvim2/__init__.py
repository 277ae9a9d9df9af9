"""Accuenergy Acuvim II power meters over Modbus TCP."""
