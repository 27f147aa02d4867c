// A 24-hour HH:MM picker for an input_datetime helper (time only): two selects, 00-23 and
// 00-59. A change calls input_datetime/set_datetime with HH:MM:00; a state update from the
// helper sets the selects without calling back.
function basethortime(widget_id, url, skin, parameters)
{
    var self = this;
    self.widget_id = widget_id;
    self.parameters = parameters;
    self.updating = false;

    var callbacks = [
        {"observable": "Hours", "action": "change", "callback": OnChange},
        {"observable": "Minutes", "action": "change", "callback": OnChange},
    ];
    var monitored_entities = ("entity" in parameters) ? [
        {"entity": parameters.entity, "initial": OnStateAvailable, "update": OnStateUpdate}
    ] : [];

    WidgetBase.call(self, widget_id, url, skin, parameters, monitored_entities, callbacks);

    function OnStateAvailable(self, state)
    {
        self.updating = true;
        self.set_field(self, "HourOptions", range(24));
        self.set_field(self, "MinuteOptions", range(60));
        self.updating = false;
        set_value(self, state);
    }

    function OnStateUpdate(self, state)
    {
        set_value(self, state);
    }

    function set_value(self, state)
    {
        var parts = String(state.state).split(":");
        if (parts.length < 2) { return; }
        self.updating = true;
        self.set_field(self, "Hours", parts[0]);
        self.set_field(self, "Minutes", parts[1]);
        self.updating = false;
    }

    function OnChange(self, value)
    {
        if (self.updating) { return; }
        var hours = self.ViewModel.Hours();
        var minutes = self.ViewModel.Minutes();
        if (!hours || !minutes) { return; }
        var args = Object.assign({}, self.parameters.post_service);
        args["time"] = hours + ":" + minutes + ":00";
        self.call_service(self, args);
    }

    function range(n)
    {
        var out = [];
        for (var i = 0; i < n; i++) { out.push(i < 10 ? "0" + i : "" + i); }
        return out;
    }
}
