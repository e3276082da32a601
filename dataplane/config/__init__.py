"""What engineers write: customer files and project settings, validated into typed, immutable models."""
