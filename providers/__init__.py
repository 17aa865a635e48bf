"""Payment providers: the PaymentProvider protocol, WeChat Pay and Alipay adapters, and
simulators that speak the same protocols."""
