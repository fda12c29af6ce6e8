"""SQL views of the analytics layer: one ``<view>.sql`` file per view (package data)."""
