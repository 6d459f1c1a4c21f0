"""model/data"""
