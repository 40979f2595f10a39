"""Operations: logs, metrics, probes, the SIEM stream and the crypto posture."""
