"""Blind boxes and lotteries: seeds committed before a sale, draws recorded, seeds revealed after."""
