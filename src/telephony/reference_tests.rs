//! Agreement with Twilio's own Python helper library (fixtures from scripts/gen_twilio_reference.py).
