//! [`record_enum!`](crate::record_enum): the enum of everything a stand-in can receive.

/// Declares the enum of everything a test's stand-in can receive, one variant a message
/// type, with what a [`Recorder`](crate::Recorder) and a
/// [`RecordingActor`](crate::RecordingActor) need of it.
///
/// For each variant `Name(Type)` it implements `From<Type>` (so that the actor records a
/// `Type` it is sent) and [`Variant<Type>`](crate::Variant) (so that the test picks the
/// `Type`s out of the log with [`Recorder::all`](crate::Recorder::all) and its kin). The
/// variants' types must differ.
///
/// A trailing `Flow<Data> => DataVariant, EndVariant;` also records a
/// [`Flow<Data>`](vigil_messages::Flow), the stream of an agent's output, as the two variants:
/// the data it carries, and the end marker's [`StopReason`](vigil_messages::StopReason).
///
/// ```
/// use actix::Message;
/// use vigil_messages::{Flow, StopReason};
/// use vigil_testkit::{Variant, record_enum};
///
/// #[derive(Message, Debug)]
/// #[rtype(result = "()")]
/// struct Tick(u32);
///
/// record_enum! {
///     /// What the stand-in received, in arrival order.
///     #[derive(Debug)]
///     enum Got {
///         /// A unit of the stream.
///         Tick(Tick),
///         /// The end of the stream.
///         End(StopReason),
///     }
///     Flow<Tick> => Tick, End;
/// }
///
/// let end = Got::from(Flow::<Tick>::End(StopReason::EndOfData));
/// assert!(matches!(end, Got::End(StopReason::EndOfData)));
/// let tick = Got::from(Flow::Data(Tick(7)));
/// assert_eq!(Variant::<Tick>::as_variant(&tick).map(|t| t.0), Some(7));
/// assert!(Variant::<StopReason>::as_variant(&tick).is_none());
/// ```
#[macro_export]
macro_rules! record_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) ),+ $(,)?
        }
        $( Flow<$flow:ty> => $data:ident, $end:ident; )*
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        $(
            impl ::core::convert::From<$ty> for $name {
                fn from(item: $ty) -> Self {
                    Self::$variant(item)
                }
            }

            impl $crate::Variant<$ty> for $name {
                #[allow(unreachable_patterns)]
                fn as_variant(&self) -> ::core::option::Option<&$ty> {
                    match self {
                        Self::$variant(item) => ::core::option::Option::Some(item),
                        _ => ::core::option::Option::None,
                    }
                }

                #[allow(unreachable_patterns)]
                fn into_variant(self) -> ::core::result::Result<$ty, Self> {
                    match self {
                        Self::$variant(item) => ::core::result::Result::Ok(item),
                        other => ::core::result::Result::Err(other),
                    }
                }
            }
        )+

        $(
            impl ::core::convert::From<$crate::__private::Flow<$flow>> for $name {
                fn from(flow: $crate::__private::Flow<$flow>) -> Self {
                    match flow {
                        $crate::__private::Flow::Data(item) => Self::$data(item),
                        $crate::__private::Flow::End(reason) => Self::$end(reason),
                    }
                }
            }
        )*
    };
}
