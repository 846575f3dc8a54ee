"""The practice side: R4 command loop and Flynotes wiring (side), the patient directory the
matcher reads, and error reporting to Rollbar."""
